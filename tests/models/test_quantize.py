"""int8 post-training quantization: close to fp32 on real images, refuses what it cannot do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from resattn.api import model_from_checkpoint
from resattn.data import load_cifar
from resattn.data.augment import normalize
from resattn.models import QuantizationError, create_model, quantize_int8

ROOT = Path(__file__).resolve().parents[2]
TRAINED = ROOT / "docs" / "results" / "gpu-h200" / "attention56-cifar10-h200-170s.pt"


@pytest.mark.slow
def test_int8_matches_fp32_on_real_images(cifar10_dir):
    """attention56 trained to 91.7% (GPU run): on 1,000 real test images the int8 model agrees
    with fp32 on almost every prediction and loses at most half a point of accuracy."""
    ckpt = torch.load(TRAINED, weights_only=True, map_location="cpu")  # saved on a GPU
    model, _ = model_from_checkpoint(ckpt)
    train, test = load_cifar("cifar10", cifar10_dir)
    calibration = normalize(train.images[torch.randperm(50000, generator=torch.Generator()
                                                         .manual_seed(0))[:256]],
                            ckpt["mean"], ckpt["std"])
    int8 = quantize_int8(model, calibration)
    x = normalize(test.images[:1000], ckpt["mean"], ckpt["std"])
    labels = test.labels[:1000]
    with torch.inference_mode():
        ref = model(x).argmax(1)
        got = int8(x).argmax(1)
    assert (ref == got).float().mean() >= 0.97
    acc_fp32 = (ref == labels).float().mean().item()
    acc_int8 = (got == labels).float().mean().item()
    assert acc_fp32 > 0.85 and acc_int8 >= acc_fp32 - 0.005
    assert any("quantized" in type(m).__module__ for m in int8.modules())  # really int8 kernels


@pytest.mark.slow
def test_original_model_untouched_and_slicing_exact():
    torch.manual_seed(0)
    model = create_model("attention56").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cal = torch.randn(8, 3, 32, 32)
    whole = quantize_int8(model, cal, micro_batch=None)
    sliced = quantize_int8(model, cal, micro_batch=4)
    x = torch.randn(10, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(whole(x), sliced(x))  # slices: the same kernels on the same rows
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_too_few_calibration_images():
    with pytest.raises(QuantizationError, match="at least 2 images, got 1"):
        quantize_int8(create_model("attention56"), torch.randn(1, 3, 32, 32))


def test_platform_without_x86_backend(monkeypatch):
    import resattn.models.quantize as q

    monkeypatch.setattr(q, "quantized_engines", lambda: ["qnnpack"])  # e.g. an ARM build
    with pytest.raises(QuantizationError, match="x86 quantization backend.*fp32 or bf16"):
        quantize_int8(create_model("attention56"), torch.randn(4, 3, 32, 32))
