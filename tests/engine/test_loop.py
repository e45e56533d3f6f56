"""`train_one_epoch` and `evaluate` called directly, on objects (a tiny model, lists of batches)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resattn.engine.loop import (
    EpochHooks,
    NonFiniteLoss,
    StepState,
    TrainStep,
    evaluate,
    evaluation_model,
    log_probs,
    mirror_average,
    resize,
    score,
    train_one_epoch,
)

CPU = torch.device("cpu")


def separable(n: int = 96, classes: int = 3, batch: int = 16, seed: int = 0):
    """Batches of 2-pixel images whose class is set by a per-class mean: learnable in a few
    steps by a linear model."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    centres = torch.randn(classes, 3, 1, 2, generator=g) * 3
    x = centres[labels] + 0.3 * torch.randn(n, 3, 1, 2, generator=g)
    return [(x[i:i + batch], labels[i:i + batch]) for i in range(0, n, batch)]


def linear(classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, classes))


def run_epoch(model, batches, state, lr=0.5, skip=0, **hooks):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return train_one_epoch(TrainStep(model, opt, CPU), batches, state,
                           EpochHooks(lambda step: lr, **hooks), skip=skip)


def test_training_learns_and_counts_steps():
    model, batches, state = linear(), separable(), StepState()
    before = evaluate(model, batches, CPU, 3)["top1"]
    for _ in range(3):
        out = run_epoch(model, batches, state)
    assert state.step == 3 * len(batches) and state.batch == len(batches)
    assert out["images"] == 96 and not out["stopped"] and out["loss"] > 0
    after = evaluate(model, batches, CPU, 3)
    assert after["top1"] > max(before, 0.9), (before, after["top1"])


def test_skip_replays_batches_without_training_and_stop_is_honoured():
    model, batches, state = linear(), separable(), StepState()
    seen = []
    out = run_epoch(model, batches, state, skip=2, on_batch=lambda: seen.append(state.batch),
                    should_stop=lambda: state.batch >= 4)
    assert seen == [3, 4] and out["stopped"] and out["images"] == 32
    assert (state.step, state.batch) == (2, 4)


def test_non_finite_loss_raises_with_the_step():
    model, batches = linear(), separable()
    with pytest.raises(NonFiniteLoss, match="step"):
        run_epoch(model, batches, StepState(), lr=float("inf"), log_every=1)


def test_resize_shrinks_the_side_and_keeps_the_picture():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 32, 32, generator=g)
    assert resize(x, 1.0) is x
    small = resize(x, 0.75)
    assert small.shape == (2, 3, 24, 24)
    # antialiased: the mean of each image survives, a constant image stays that constant
    torch.testing.assert_close(small.mean((2, 3)), x.mean((2, 3)), atol=0.02, rtol=0)
    torch.testing.assert_close(resize(torch.full((1, 3, 32, 32), 0.7), 0.5),
                               torch.full((1, 3, 16, 16), 0.7))
    assert resize(torch.zeros(1, 3, 40, 20), 0.5).shape == (1, 3, 20, 10)


def test_scale_at_shrinks_the_batches_the_model_sees():
    model, batches, state = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                          nn.Linear(3, 3)), separable(), StepState()
    sides = []
    model.register_forward_pre_hook(lambda module, args: sides.append(args[0].shape[-1]))
    batches = [(x.mean((2, 3), keepdim=True).expand(-1, -1, 8, 8), y) for x, y in batches[:4]]
    run_epoch(model, batches, state, scale_at=lambda step: 0.5 if step < 2 else 1.0)
    assert sides == [4, 4, 8, 8]


class Fixed(nn.Module):
    """Logits given per image (by its first pixel, which is the image's index)."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table

    def forward(self, x):
        return self.table[x[:, 0, 0, 0].long()]


def test_evaluate_metrics_match_a_hand_count():
    # 4 images, 6 classes; labels 0, 1, 2, 5
    logits = torch.tensor([[9., 1, 0, 0, 0, 0],   # right
                           [9., 1, 0, 0, 0, 0],   # wrong, label 1 in the top 5
                           [1., 0, 3, .5, .2, 9],  # wrong, label 2 second: in the top 5
                           [0., 9, 8, 7, 6, 5]])  # wrong, label 5 is 5th: in the top 5
    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 1, 1).clone()
    labels = torch.tensor([0, 1, 2, 5])
    batches = [(x[:3], labels[:3]), (x[3:], labels[3:])]
    out = evaluate(Fixed(logits), batches, CPU, 6)
    assert out["count"] == 4 and out["top1"] == 0.25 and out["top5"] == 1.0
    assert score(*log_probs(Fixed(logits), batches, CPU), 6,
                 return_predictions=True)["predictions"] == [0, 0, 5, 1]
    assert out["per_class"] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    confusion = torch.tensor(out["confusion"])
    assert confusion.sum() == 4 and confusion[1, 0] == 1 and confusion[5, 1] == 1
    expected = nn.functional.cross_entropy(logits, labels).item()
    assert out["loss"] == pytest.approx(expected, rel=1e-6)


def test_tta_averages_the_image_and_its_mirror():
    class Sided(nn.Module):  # class 0 if the left pixel is bright, else class 1
        def forward(self, x):
            left = x[:, 0, 0, 0]
            return torch.stack([left * 4, -left * 4], 1)

    x = torch.tensor([[[[1.0, -1.0]]]]).expand(1, 3, 1, 2).clone()
    plain = evaluate(Sided(), [(x, torch.tensor([0]))], CPU, 2)
    tta = evaluate(Sided(), [(x, torch.tensor([0]))], CPU, 2, tta=True)
    # the mirror says the opposite with equal confidence: the average is 50/50
    assert plain["loss"] < 0.01 and tta["loss"] == pytest.approx(-torch.log(torch.tensor(0.5)))


def test_the_mirror_pass_completes_a_plain_pass_into_flip_tta():
    """log_probs' three views: the mirror images' pass averaged with a kept plain pass is the
    one-pass TTA, image by image and in the loader's order."""
    class Leaning(nn.Module):  # depends on the left-right order of the pixels
        def forward(self, x):
            return torch.stack([x[:, 0, 0, 0] * 3 + x[:, 0, 0, 1], x[:, 0, 0, 1] * 2], 1)

    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 3, 1, 2, generator=g), torch.randint(0, 2, (4,), generator=g))
               for _ in range(3)]
    plain, labels = log_probs(Leaning(), batches, CPU, view="plain")
    mirrored, again = log_probs(Leaning(), batches, CPU, view="flip")
    tta, _ = log_probs(Leaning(), batches, CPU, view="tta")
    assert torch.equal(labels, again) and plain.shape == (12, 2)
    assert not torch.allclose(plain, mirrored)
    torch.testing.assert_close(mirror_average(plain, mirrored), tta)
    torch.testing.assert_close(tta.exp(), (plain.exp() + mirrored.exp()) / 2)
    assert score(tta, labels, 2) == evaluate(Leaning(), batches, CPU, 2, tta=True)
    with pytest.raises(ValueError, match="view"):
        log_probs(Leaning(), batches, CPU, view="mirror")


def test_the_evaluation_model_is_a_folded_copy_with_the_same_outputs():
    """evaluation_model folds BatchNorm into a frozen copy (in slices on a CPU): the outputs
    agree to rounding and the trained module is untouched; a BatchNorm without running
    statistics has nothing to fold and the model runs as it is."""
    from resattn.models import create_model

    torch.manual_seed(0)
    model = create_model("attention_test", num_classes=10)
    for m in model.modules():  # running statistics a trained model would have
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    bns = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(70, 3, 32, 32)
    fast = evaluation_model(model, CPU, channels_last=True)
    assert fast is not model and sum(isinstance(m, nn.BatchNorm2d) for m in fast.modules()) < bns
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == bns
    assert not any(p.requires_grad for p in fast.parameters())
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=1e-4, rtol=1e-4)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False))
    assert evaluation_model(plain, CPU, channels_last=False) is plain
