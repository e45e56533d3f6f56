"""Every registered model: shapes, finiteness, gradients, parameter counts, input sizes."""

import copy
import functools

import pytest
import torch
from conftest import assert_same_state
from torch import nn

import resattn
from resattn.models import count_params, create_model, get_spec
from resattn.models.stats import model_stats

# Paper figures and how close the issue asks us to land: Table 6 (CIFAR) and Table 2 (ImageNet).
PAPER = {
    "attention92": (1.9e6, 0.10),
    "attention236": (5.1e6, 0.10),
    "attention56_imagenet": (31.9e6, 0.03),
    "attention92_imagenet": (51.3e6, 0.03),
    "resnet164": (1.7e6, 0.03),
}

OTHER_SIZE = {"cifar": 40, "mini": 64, "imagenet": 96}
SMALL_SIZE = {"cifar": 32, "mini": 32, "imagenet": 64}  # enough for every mask level
MODELS = resattn.list_models()


@pytest.mark.parametrize("name", MODELS)
def test_param_count_is_the_shipped_tables(name):
    """The parameter counts are pinned once, in the shipped table (models/stats.json, which
    `resattn models` reads): a change to an architecture must regenerate it, deliberately."""
    with torch.device("meta"):
        model = create_model(name)
    assert count_params(model) == model_stats(name)["params"]


@pytest.mark.parametrize("name", list(PAPER))
def test_param_count_matches_paper(name):
    target, tolerance = PAPER[name]
    assert abs(model_stats(name)["params"] - target) / target <= tolerance


@pytest.mark.parametrize("name", ["attention56_imagenet", "attention92_imagenet"])
def test_flops_match_paper(name):
    # paper Table 2: 6.2 and 10.4 GFLOPs (multiply-accumulates) at 224x224; the shipped table's
    # counts are the live ones (test_shipped_table_matches_the_models, slow tier)
    target = {"attention56_imagenet": 6.2e9, "attention92_imagenet": 10.4e9}[name]
    assert get_spec(name).input_size == 224
    assert abs(model_stats(name)["flops"] - target) / target < 0.03


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_every_parameter_gets_gradient(name):
    """Training mode at a small size: the head's width, finite logits, a gradient for every
    parameter; then eval mode at another size (the masks follow the feature maps)."""
    torch.manual_seed(0)
    size = SMALL_SIZE[get_spec(name).stem]
    model = create_model(name, num_classes=7)
    x = torch.randn(2, 3, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    out.logsumexp(dim=1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    other = OTHER_SIZE[get_spec(name).stem]
    with torch.no_grad():
        out = model.eval()(torch.randn(2, 3, other, other))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@functools.cache
def _three_class_model(name: str) -> torch.nn.Module:
    """One model per name for the read-only (eval, no_grad) tests below."""
    torch.manual_seed(0)
    return create_model(name, num_classes=3).eval()


@pytest.mark.parametrize("size", [32, 40, 100, 224])
@pytest.mark.parametrize("name", ["attention56", "attention56_imagenet", "attention56_mini"])
def test_any_input_size(name, size):
    # masks upsample to the matching feature map, never to a fixed size: odd sizes work too
    model = _three_class_model(name)
    with torch.no_grad():
        logits, masks = model.forward_with_masks(torch.randn(1, 3, size, size))
    assert logits.shape == (1, 3)
    assert torch.isfinite(logits).all()
    assert masks and all(torch.isfinite(m).all() for m in masks.values())


def test_forward_features_and_head_split():
    model = create_model("attention56").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 256, 8, 8)
        assert model.forward_head(feats, pre_logits=True).shape == (2, 256)
        assert torch.equal(model.forward_head(feats), model(x))


def test_in_chans_and_drop_rate():
    model = create_model("attention56", num_classes=4, in_chans=1, drop_rate=0.3)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 4)
    assert model.drop.p == 0.3


def test_models_do_not_move_or_print(capsys):
    model = create_model("attention56")
    assert all(p.device.type == "cpu" for p in model.parameters())
    model(torch.randn(2, 3, 32, 32))
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("name", ["attention56", "attention56_imagenet", "attention56_mini"])
def test_inference_model_folds_batchnorm_and_matches(name):
    torch.manual_seed(0)
    spec = get_spec(name)
    size = min(spec.input_size, 64)
    model = create_model(name, num_classes=5)
    with torch.no_grad():  # non-trivial running statistics
        for _ in range(3):
            model(torch.randn(4, 3, size, size) * 2 + 0.5)
    model.eval()
    bns = lambda m: sum(isinstance(q, torch.nn.BatchNorm2d) for q in m.modules())  # noqa: E731
    before = bns(model)
    fast = resattn.inference_model(model)
    x = torch.randn(3, 3, size, size)
    with torch.no_grad():
        assert torch.allclose(fast(x), model(x), atol=1e-4, rtol=1e-4)
    sliced = resattn.inference_model(model, micro_batch=2)  # batch 3 runs as 2 + 1
    with torch.no_grad():
        assert torch.allclose(sliced(x), fast(x), atol=1e-5)
    assert bns(fast) < before / 2  # most BNs folded away
    assert bns(model) == before  # the original is untouched
    assert all(not p.requires_grad for p in fast.parameters())


@pytest.mark.parametrize("x,shown", [
    (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), "torch.uint8 tensor of shape (2, 3, 32, 32)"),
    (torch.zeros(2, 1, 32, 32), "torch.float32 tensor of shape (2, 1, 32, 32)"),
    (torch.zeros(3, 32, 32), "torch.float32 tensor of shape (3, 32, 32)"),
])
def test_a_wrong_input_is_named_in_one_clear_error(x, shown):
    """Integer pixels, another channel count or a missing batch axis: one error naming what
    the model takes, not the first convolution's."""
    from resattn.errors import InvalidOption

    model = _three_class_model("attention56")
    with pytest.raises(InvalidOption, match=r"the model takes float tensors \(N, 3, H, W\)") as e:
        model(x)
    assert shown in str(e.value)
    gray = create_model("attention_test", in_chans=1).eval()
    assert gray(torch.zeros(1, 1, 32, 32)).shape == (1, 10)  # in_chans=1 takes one channel


@pytest.mark.parametrize("name", ["attention_test", "attention56"])
def test_grad_checkpointing_keeps_losses_gradients_and_statistics(name):
    """set_grad_checkpointing: two training steps give the same losses, gradients and
    BatchNorm running statistics as without (the recomputation in the backward pass counts no
    batch twice); evaluation and no-grad forwards do not checkpoint."""
    from resattn.models import network

    torch.manual_seed(0)
    plain = create_model(name, num_classes=10)
    checked = copy.deepcopy(plain)
    checked.set_grad_checkpointing(True)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    for model in (plain, checked):
        model.train()
    for _ in range(2):
        losses = []
        for model in (plain, checked):
            model.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            losses.append(loss.detach())
        torch.testing.assert_close(losses[0], losses[1])
        for (n, a), b in zip(plain.named_parameters(), checked.parameters()):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=n)
    assert_same_state(plain, checked)  # running means, variances and batch counts
    calls = []
    real = network.checkpoint
    try:
        network.checkpoint = lambda *a, **k: calls.append(1) or real(*a, **k)
        with torch.no_grad():
            checked(x)
        assert not calls and checked.grad_checkpointing
        checked(x).sum().backward()
        assert len(calls) == sum(len(list(stage.children())) for stage in checked.stages)
    finally:
        network.checkpoint = real


@functools.cache
def meta_model(name: str):
    """One shapes-only model per name for the read-only size checks."""
    with torch.device("meta"):
        return create_model(name).eval()


@pytest.mark.parametrize("name", ["attention56_imagenet", "attention92_imagenet"])
@pytest.mark.parametrize("size", [224, 256, 320, 227, 299, 97])
def test_imagenet_models_take_any_input_size_with_masks_the_trunks_size(name, size):
    """The paper's sizes (224, and 320 for Attention-92's test) and odd ones: each soft mask has
    its trunk's spatial size (the stride-4 stem, then each stage's stride 2, rounding up),
    checked on the meta device (shapes only, no memory)."""
    logits, masks = meta_model(name).forward_with_masks(
        torch.empty(2, 3, size, size, device="meta"))
    assert logits.shape == (2, 1000)
    side = -(-size // 4)  # the stem: a stride-2 convolution, then a stride-2 max pool
    sides = {"stage1": side, "stage2": -(-side // 2), "stage3": -(-side // 4)}
    assert masks and all(mask.shape[-2:] == (sides[key.split(".")[0]],) * 2
                         for key, mask in masks.items())
