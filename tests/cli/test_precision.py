"""The default precision follows what the CPU computes natively, never oneDNN's emulation."""

from __future__ import annotations

import pytest
import torch

from resattn import runtime as common
from resattn.errors import UserError

CPU = torch.device("cpu")


def fake_cpu(monkeypatch, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.delenv("RESATTN_CPU_BF16", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)


@pytest.mark.parametrize("avx512_bf16,amx,expected", [
    (False, False, "off"),  # Xeon with AVX512 + VNNI only: oneDNN would emulate bf16
    (True, False, "bf16"),  # EPYC (Zen 4) / Cooper Lake: AVX512-BF16
    (False, True, "bf16"),  # Sapphire Rapids and later: AMX tiles
])
def test_auto_picks_bf16_only_where_native(monkeypatch, avx512_bf16, amx, expected):
    fake_cpu(monkeypatch, avx512_bf16, amx)
    assert common.resolve_amp("auto", CPU) == expected
    assert common.cpu_has_native_bf16() is (expected == "bf16")


def test_explicit_choices_are_kept_and_fp16_refused_on_cpu(monkeypatch):
    fake_cpu(monkeypatch, False, False)
    assert common.resolve_amp("bf16", CPU) == "bf16"  # the user's word wins
    assert common.resolve_amp("off", CPU) == "off"
    with pytest.raises(UserError, match="fp16 is for GPUs"):
        common.resolve_amp("fp16", CPU)


@pytest.mark.parametrize("value,expected", [("0", "off"), ("1", "bf16")])
def test_environment_override(monkeypatch, value, expected):
    fake_cpu(monkeypatch, avx512_bf16=value == "0", amx=False)  # the opposite of the override
    monkeypatch.setenv("RESATTN_CPU_BF16", value)
    assert common.resolve_amp("auto", CPU) == expected



@pytest.mark.parametrize("native", [True, False])
def test_a_run_with_amp_auto_trains_and_records_the_rule(synthetic_cifar10, tmp_path,
                                                         monkeypatch, native):
    """--amp auto (the default) through a whole run: bf16 where the CPU has it natively, fp32
    elsewhere, and summary.json says which."""
    import resattn

    fake_cpu(monkeypatch, avx512_bf16=native, amx=False)
    summary, _ = resattn.train(model="attention_test", data_dir=str(synthetic_cifar10),
                               train_subset=32, val_size=20, test_subset=20, batch_size=16,
                               iterations=1, device="cpu", out=str(tmp_path), progress=False)
    assert summary["amp"] == ("bf16" if native else "off")
