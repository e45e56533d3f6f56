"""Every user mistake a hostile probe found, through the command line: exit 2, one line on
stderr, no traceback, and nothing already written changed."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from resattn.cli import main
from resattn.engine.checkpoint import load_checkpoint, save_checkpoint


@dataclass
class Case:
    args: list[str]  # {run}: a copy of a trained run; {tmp}: the case's folder; {data}
    message: str  # a piece of the one line
    setup: Callable[[Path, Path], None] = lambda tmp, run: None
    no_new: list[str] = field(default_factory=list)  # paths that must not appear


def _edit_checkpoint(edit):
    """A setup that rewrites {run}/last.pt through `edit(ckpt)`, with a valid checksum: the
    content is wrong, not the file."""
    def setup(tmp: Path, run: Path) -> None:
        ckpt = load_checkpoint(run / "last.pt")
        for key in ("format", "version"):
            ckpt.pop(key)
        edit(ckpt)
        save_checkpoint(ckpt, run / "last.pt")
    return setup


def _write(name: str, data: bytes):
    def setup(tmp: Path, run: Path) -> None:
        (tmp / name).write_bytes(data)
    return setup


def _files(contents: dict[str, bytes]):
    def setup(tmp: Path, run: Path) -> None:
        for name, data in contents.items():
            (tmp / name).write_bytes(data)
    return setup


def _truncated(tmp: Path, run: Path) -> None:
    data = (run / "last.pt").read_bytes()
    (tmp / "bad.pt").write_bytes(data[: len(data) // 2])


def _bad_pickle_zip(tmp: Path, run: Path) -> None:
    with zipfile.ZipFile(tmp / "bad.pt", "w") as z:  # a zip, but no torch archive inside
        z.writestr("last/data.pkl", b"\x80\x02garbage")
        z.writestr("last/version", b"3\n")


def _flipped(tmp: Path, run: Path) -> None:
    """64 bytes flipped in the middle of the largest tensor: still a loadable file."""
    path = run / "last.pt"
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    at = info.header_offset  # local header: 30 bytes, then the name and the extra field
    name_len = int.from_bytes(raw[at + 26:at + 28], "little")
    extra_len = int.from_bytes(raw[at + 28:at + 30], "little")
    start = at + 30 + name_len + extra_len + info.file_size // 2
    for i in range(start, start + 64):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


def _wrong_shapes(ckpt: dict) -> None:
    ckpt["model"]["fc.weight"] = torch.zeros(3, 3)


def _file(name: str):
    return _write(name, b"not a folder\n")


def _folder(name: str):
    def setup(tmp: Path, run: Path) -> None:
        (tmp / name).mkdir()
    return setup


def _one_class(tmp: Path, run: Path) -> None:
    from PIL import Image
    for i in range(3):
        path = tmp / "images" / "train" / "cat" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (i, i, i)).save(path)


CASES = {
    # checkpoints: damaged files, then valid files with wrong content
    "ckpt-empty": Case(["evaluate", "{tmp}/bad.pt"], "not a readable checkpoint",
                       _write("bad.pt", b"")),
    "ckpt-truncated": Case(["evaluate", "{tmp}/bad.pt"], "not a readable checkpoint",
                           _truncated),
    "ckpt-zip-without-torch-archive": Case(["predict", "{tmp}/bad.pt", "{tmp}"],
                                           "not a readable checkpoint", _bad_pickle_zip),
    "ckpt-flipped-bytes": Case(["evaluate", "{run}"], "does not match the checksum", _flipped),
    "ckpt-missing-classes": Case(["evaluate", "{run}"], "lacks a valid 'classes' entry",
                                 _edit_checkpoint(lambda c: c.pop("classes"))),
    "ckpt-config-wrong-type": Case(["predict", "{run}", "{tmp}"], "lacks a valid",
                                   _edit_checkpoint(lambda c: c.update(config=5))),
    "ckpt-weights-wrong-type": Case(["visualize", "{run}", "{tmp}", "--out", "{tmp}/v"],
                                    "holds no weights",
                                    _edit_checkpoint(lambda c: c.update(model=[1, 2])),
                                    no_new=["v"]),
    "resume-wrong-shapes": Case(["train", "--resume", "{run}", "--no-progress"],
                                "cannot be resumed", _edit_checkpoint(_wrong_shapes)),
    "resume-missing-optimizer": Case(["train", "--resume", "{run}", "--no-progress"],
                                     "cannot be resumed",
                                     _edit_checkpoint(lambda c: c.pop("optimizer"))),
    "resume-config-not-a-table": Case(["train", "--resume", "{run}", "--no-progress"],
                                      "holds no configuration",
                                      _edit_checkpoint(lambda c: c.update(config="x"))),
    # devices, in every command that takes one
    **{f"{cmd}-device-{dev}": Case(
        [cmd, *({"train": ["--no-progress", "--out", "{tmp}/runs"],
                 "evaluate": ["{run}"], "predict": ["{run}", "{tmp}"],
                 "visualize": ["{run}", "{tmp}", "--out", "{tmp}/v"],
                 "bench": ["attention56", "--seconds", "0.1"]}[cmd]), "--device", dev],
        f"--device '{dev}' is not valid", no_new=["runs", "v"])
       for cmd in ("train", "evaluate", "predict", "visualize", "bench")
       for dev in ("cuda:abc", "foo")},
    "train-device-meta": Case(["train", "--device", "meta", "--out", "{tmp}/runs"],
                              "--device 'meta' is not valid", no_new=["runs"]),
    # outputs in the way
    "train-out-is-a-file": Case(["train", "--out", "{tmp}/taken", "--data-dir", "{data}",
                                 "--train-subset", "100",
                                 "--val-size", "0", "--test-subset", "100", "--epochs", "1",
                                 "--no-progress"], "is a file; choose another one",
                                _file("taken")),
    "visualize-out-is-a-file": Case(["visualize", "{run}", "{tmp}", "--out", "{tmp}/taken"],
                                    "is a file", _file("taken")),
    "plot-out-is-a-folder": Case(["plot", "{run}", "--out", "{tmp}/pics"], "is a directory",
                                 _folder("pics")),
    "export-to-existing-folder": Case(["export", "{run}", "--format", "torchscript", "--out",
                                       "{tmp}/pics"], "is a directory", _folder("pics")),
    "export-under-a-file": Case(["export", "{run}", "--format", "torchscript", "--out",
                                 "{tmp}/taken/model.pt"], "cannot write", _file("taken")),
    "export-safetensors-into-a-project": Case(
        ["export", "{run}", "--format", "safetensors", "--out", "{tmp}"],
        "holds files (README.md, config.json, setup.py) and is not an earlier resattn export",
        _files({"README.md": b"# my project\n", "config.json": b"{}", "setup.py": b""})),
    "export-over-a-file-of-the-user": Case(
        ["export", "{run}", "--format", "torchscript", "--out", "{tmp}/notes.pt"],
        "notes.pt exists and is not an earlier resattn export", _files({"notes.pt": b"mine"})),
    "export-opset-999": Case(["export", "{run}", "--format", "onnx", "--out", "{tmp}/m.onnx",
                              "--opset", "999"], "--opset 999 is not valid", no_new=["m.onnx"]),
    "export-opset-7": Case(["export", "{run}", "--format", "onnx", "--out", "{tmp}/m.onnx",
                            "--opset", "7"], "--opset 7 is not valid", no_new=["m.onnx"]),
    "evaluate-predictions-into-a-folder": Case(["evaluate", "{run}", "--save-predictions",
                                                "{tmp}/pics"], "is a directory",
                                               _folder("pics")),
    # data that cannot train: refused before the run directory is made
    "train-folder-one-class": Case(["train", "--dataset", "folder", "--data-dir",
                                    "{tmp}/images", "--val-size", "0", "--out", "{tmp}/runs"],
                                   "has one class folder (cat); a classifier needs at least two",
                                   _one_class, no_new=["runs"]),
    "train-smaller-than-a-batch": Case(["train", "--data-dir", "{data}", "--train-subset", "100",
                                        "--val-size", "0", "--batch-size", "128", "--out",
                                        "{tmp}/runs", "--no-progress"],
                                       "--batch-size 128 is not valid; the training set is "
                                       "smaller than one batch", no_new=["runs"]),
    # configuration files: a bad name fails before any data is read
    "config-file-bad-model": Case(["train", "--config", "{tmp}/c.toml", "--data-dir",
                                   "/nonexistent", "--out", "{tmp}/runs"],
                                  "c.toml: model='attention57' is not valid",
                                  _write("c.toml", b'[model]\nmodel = "attention57"\n'),
                                  no_new=["runs"]),
    "config-file-bad-mask": Case(["train", "--config", "{tmp}/c.toml", "--data-dir",
                                  "/nonexistent", "--out", "{tmp}/runs"],
                                 "c.toml: mask='pyramid' is not valid",
                                 _write("c.toml", b'[model]\nmask = "pyramid"\n'),
                                 no_new=["runs"]),
}


def snapshot(*folders: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def run_copy(small_run, tmp_path) -> Path:
    return Path(shutil.copytree(small_run, tmp_path / "run"))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, run_copy, tmp_path, synthetic_cifar10, capsys):
    case = CASES[name]
    work = tmp_path / "case"
    work.mkdir()
    case.setup(work, run_copy)
    args = [a.format(run=run_copy, tmp=work, data=synthetic_cifar10) for a in case.args]
    before = snapshot(work, run_copy)
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err[-3000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert case.message in lines[0], lines[0]
    assert snapshot(work, run_copy) == before, "a file already written was changed"
    for new in case.no_new:
        assert not (work / new).exists()


def test_garbage_metrics_lines_are_skipped_by_plot_and_resume(run_copy, synthetic_cifar10,
                                                             capsys):
    """A metrics.jsonl cut by a crash or edited by hand: plot and resume keep the good rows."""
    metrics = run_copy / "metrics.jsonl"
    good = metrics.read_text()
    metrics.write_text(good + "garbage\n[1, 2]\n{\"epoch\": 4, \"val_")
    assert main(["plot", str(run_copy)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"resattn plot: skipped 3 unreadable line(s) of {metrics}"]
    assert (run_copy / "curves.png").stat().st_size > 1000
    assert main(["train", "--resume", str(run_copy), "--data-dir", str(synthetic_cifar10),
                 "--no-progress"]) == 0
    assert metrics.read_text() == good  # the run was complete: its rows, and only those


def test_an_internal_error_keeps_its_traceback_and_asks_for_a_report(monkeypatch, capsys):
    """A ValueError from a bug is not dressed up as a user mistake: it keeps its traceback."""
    import resattn.cli.models as models_cmd

    def broken(args):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(models_cmd, "run", broken)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: an internal inconsistency" in err
    assert err.strip().splitlines()[-1].endswith(
        "this is a bug, please report it with the command line, the traceback above and the "
        "output of resattn --version")
