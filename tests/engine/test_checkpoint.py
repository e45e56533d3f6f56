"""Checkpoints: the stored checksum survives a round trip and catches changed content; a failed
write (disk full) keeps the previous file and says so in one line."""

from __future__ import annotations

import errno

import pytest
import torch

from resattn.engine import checkpoint as ck
from resattn.engine.logger import read_metrics
from resattn.errors import UserError


def state(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"model": {"w": torch.randn(4, 3, generator=g), "b": torch.zeros(4).bfloat16()},
            "epoch": 2, "batch": 0, "config": {"lr": 0.1, "milestones": [1.0]},
            "rng": ck.rng_state(), "classes": ["a", "b"], "ema": None}


def test_checksum_round_trip_and_detects_changed_content(tmp_path):
    path = ck.save_checkpoint(state(), tmp_path / "last.pt")
    loaded = ck.load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], state()["model"]["w"])
    assert "payload_sha256" not in loaded  # checked and removed
    raw = torch.load(path, weights_only=True)
    assert raw["payload_sha256"] == ck.payload_sha256(state())
    # the same file with one weight changed and the old checksum: refused
    raw["model"]["w"][0, 0] += 1
    torch.save(raw, path)
    with pytest.raises(UserError, match="does not match the checksum"):
        ck.load_checkpoint(path)
    # content order does not matter; content does
    assert ck.payload_sha256({"a": 1, "b": 2}) == ck.payload_sha256({"b": 2, "a": 1})
    assert ck.payload_sha256({"a": [1]}) != ck.payload_sha256({"a": (1,)})


def test_a_loaded_checkpoint_saved_again_loads(tmp_path):
    """What load_checkpoint returns (with its format marks) can be edited and saved again, and
    the new file's checksum holds."""
    loaded = ck.load_checkpoint(ck.save_checkpoint(state(), tmp_path / "a.pt"))
    loaded["extra"] = 1
    again = ck.load_checkpoint(ck.save_checkpoint(loaded, tmp_path / "b.pt"))
    assert again["extra"] == 1 and torch.equal(again["model"]["w"], state()["model"]["w"])


def test_a_checkpoint_without_checksum_still_loads(tmp_path):
    """Checkpoints written before the checksum (e.g. the published GPU run) stay readable."""
    torch.save({"format": ck.FORMAT, "version": ck.VERSION, **state()}, tmp_path / "old.pt")
    assert ck.load_checkpoint(tmp_path / "old.pt")["epoch"] == 2


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("PytorchStreamWriter failed writing file")])
def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch, error):
    path = ck.save_checkpoint(state(0), tmp_path / "last.pt")
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise error

    monkeypatch.setattr(ck.torch, "save", full)
    with pytest.raises(UserError, match="the previous one is kept") as info:
        ck.save_checkpoint(state(1), path)
    assert info.value.__suppress_context__ and len(str(info.value).splitlines()) == 1
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_metrics_lines_cut_or_edited_are_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "val_acc": 0.5}\ngarbage\n5\n{"epoch": "2"}\n'
                    '{"epoch": 2, "val_acc": 0.6}\n{"epoch": 3, "val_')
    rows, bad = read_metrics(path)
    assert [r["epoch"] for r in rows] == [1, 2] and bad == 4
