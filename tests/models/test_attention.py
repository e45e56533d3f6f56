"""Attention module semantics: ARL / NAL / none, the three activations, mask types, masks API."""

import pytest
import torch
from torch import nn

from resattn.models import AttentionModule, AttentionOptions, create_model
from resattn.models.activations import ChannelAttention, MixedAttention, SpatialAttention
from resattn.models.soft_mask import EncoderDecoderMask, LocalMask


class FixedMask(nn.Module):
    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.value = value

    def forward(self, x):
        return self.value.expand_as(x)


def module_with_fixed_mask(residual: str, mask: torch.Tensor) -> AttentionModule:
    torch.manual_seed(0)
    module = AttentionModule(16, 2, AttentionOptions(residual=residual)).eval()
    module.soft_mask = FixedMask(mask)
    module.post = nn.Identity()  # compare H itself, before the closing units
    return module


def trunk_output(module: AttentionModule, x: torch.Tensor) -> torch.Tensor:
    return module.trunk(module.pre(x))


def test_arl_with_zero_mask_is_the_trunk():
    x = torch.randn(2, 16, 12, 12)
    module = module_with_fixed_mask("arl", torch.zeros(1, 16, 12, 12))
    with torch.no_grad():
        assert torch.allclose(module(x), trunk_output(module, x))


def test_arl_and_nal_formulas():
    x = torch.randn(2, 16, 12, 12)
    mask = torch.rand(1, 16, 12, 12)
    arl = module_with_fixed_mask("arl", mask)
    nal = module_with_fixed_mask("nal", mask)
    with torch.no_grad():
        trunk = trunk_output(arl, x)
        assert torch.allclose(arl(x), (1 + mask) * trunk)
        assert torch.allclose(nal(x), mask * trunk)
        assert not torch.allclose(arl(x), nal(x))


def test_residual_none_builds_no_mask():
    full = create_model("attention56")
    plain = create_model("attention56", residual="none")
    assert all(m.soft_mask is None for m in plain.modules() if isinstance(m, AttentionModule))
    assert plain.attention_modules() == []
    assert sum(p.numel() for p in plain.parameters()) < sum(p.numel() for p in full.parameters())


@pytest.mark.parametrize("attention", ["mixed", "spatial"])
def test_sigmoid_masks_lie_in_open_unit_interval(attention):
    torch.manual_seed(0)
    model = create_model("attention56", attention=attention)  # BN batch statistics
    with torch.no_grad():
        _, masks = model.forward_with_masks(torch.randn(2, 3, 32, 32))
    assert len(masks) == 3
    for m in masks.values():
        assert (m > 0).all() and (m < 1).all()


def test_channel_attention_has_unit_norm_over_channels():
    torch.manual_seed(0)
    model = create_model("attention56", attention="channel").eval()
    with torch.no_grad():
        _, masks = model.forward_with_masks(torch.randn(2, 3, 32, 32))
    for m in masks.values():
        assert torch.allclose(m.norm(dim=1), torch.ones_like(m[:, 0]), atol=1e-5)


def test_activation_functions_directly():
    x = torch.randn(3, 8, 5, 5) * 4
    assert torch.allclose(MixedAttention()(x), torch.sigmoid(x))
    assert torch.allclose(ChannelAttention()(x).norm(dim=1), torch.ones(3, 5, 5), atol=1e-6)
    s = SpatialAttention()(x)
    # standardised per channel: the logit mean is 0, so the sigmoid's mean of logits maps to 0.5
    logits = torch.logit(s.double())
    assert torch.allclose(logits.mean(dim=(2, 3)), torch.zeros(3, 8, dtype=torch.double),
                          atol=1e-4)
    assert torch.allclose(logits.std(dim=(2, 3), unbiased=False),
                          torch.ones(3, 8, dtype=torch.double), atol=1e-3)


def test_mask_type_local_has_no_pooling_and_same_shape():
    model = create_model("attention56", mask="local")
    masks = [m.soft_mask for m in model.modules() if isinstance(m, AttentionModule)]
    assert masks and all(isinstance(m, LocalMask) for m in masks)
    assert not any(isinstance(m, nn.MaxPool2d) for mask in masks for m in mask.modules())
    default = create_model("attention56")
    assert all(isinstance(m.soft_mask, EncoderDecoderMask)
               for m in default.modules() if isinstance(m, AttentionModule))


@pytest.mark.parametrize("levels,size", [(1, 8), (2, 16), (3, 32), (3, 13)])
def test_encoder_decoder_mask_keeps_input_shape(levels, size):
    mask = EncoderDecoderMask(16, levels=levels, r=1).eval()
    x = torch.randn(2, 16, size, size)
    with torch.no_grad():
        assert mask(x).shape == x.shape
    assert sum(isinstance(m, nn.MaxPool2d) for m in mask.modules()) == levels


def test_forward_with_masks_leaves_forward_unchanged():
    torch.manual_seed(0)
    model = create_model("attention92").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits, masks = model.forward_with_masks(x)
        assert torch.equal(logits, model(x))
    assert list(masks) == ["stage1.module1", "stage1.module2", "stage2.module1",
                           "stage2.module2", "stage3.module1", "stage3.module2"]
    assert masks["stage1.module1"].shape == (2, 64, 32, 32)
    assert masks["stage2.module1"].shape == (2, 128, 16, 16)
    assert masks["stage3.module2"].shape == (2, 256, 8, 8)
    # the temporary hooks are gone afterwards
    assert all(not m.soft_mask._forward_hooks for _, m in model.attention_modules())


def test_caffe_options_of_the_authors_prototxts():
    """upsample_align_corners (Caffe's Interp) changes the mask, not the parameters;
    mask_head_bias=False drops one bias of C values per attention module."""
    from resattn import create_model

    torch.manual_seed(0)
    ours = create_model("attention56").eval()
    caffe = create_model("attention56", upsample_align_corners=True).eval()
    caffe.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(ours(x), caffe(x))
    no_bias = create_model("attention56", mask_head_bias=False)
    module_chs = [m.soft_mask.head[-1].out_channels for _, m in ours.attention_modules()]
    assert sum(p.numel() for p in ours.parameters()) - \
        sum(p.numel() for p in no_bias.parameters()) == sum(module_chs) == 64 + 128 + 256
    assert all(m.soft_mask.head[-1].bias is None for _, m in no_bias.attention_modules())
