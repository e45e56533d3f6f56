"""The faithfulness metrics on a model whose answer is known: only the top-left quadrant of the
image decides its prediction. The metric must rank a map that points there above random order
and random order above a map that points at the opposite quadrant; occlusion (through Captum)
must find the quadrant by itself."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resattn.errors import UserError
from resattn.saliency import area, baseline_images, curves, mean_interval, pixel_order
from resattn.saliency.maps import occlusion, saliency_maps

SIZE = 16


class QuadrantModel(nn.Module):
    """Two classes; the logit of class 0 is 8 x the mean of the top-left quadrant (all
    channels); nothing else in the image counts."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // 2, x.shape[-1] // 2
        score = 8 * x[:, :, :h, :w].mean((1, 2, 3))
        return torch.stack([score, torch.zeros_like(score)], 1)


def images(n: int = 24) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, SIZE, SIZE, generator=g)
    x[:, :, :SIZE // 2, :SIZE // 2] += 1.0  # the quadrant that makes class 0 likely
    return x


def quadrant_map(n: int, top_left: bool) -> torch.Tensor:
    m = torch.zeros(n, SIZE, SIZE)
    if top_left:
        m[:, :SIZE // 2, :SIZE // 2] = 1
    else:
        m[:, SIZE // 2:, SIZE // 2:] = 1
    return m


def curves_of(saliency: torch.Tensor, x: torch.Tensor, steps: int = 8):
    model = QuadrantModel()
    target = torch.zeros(len(x), dtype=torch.long)

    def prob(z: torch.Tensor) -> torch.Tensor:
        return model(z).softmax(1)[:, 0]

    base = baseline_images(x, "mean")
    ends = (prob(x), prob(base))
    order = pixel_order(saliency, torch.Generator().manual_seed(1))
    return curves(prob, x, base, order, steps, ends), ends, target


def test_the_right_map_beats_random_and_random_beats_the_wrong_one():
    x = images()
    n = len(x)
    g = torch.Generator().manual_seed(2)
    right, wrong = quadrant_map(n, True), quadrant_map(n, False)
    rand = torch.rand(n, SIZE, SIZE, generator=g)
    (d_right, i_right), _, _ = curves_of(right, x)
    (d_rand, i_rand), _, _ = curves_of(rand, x)
    (d_wrong, i_wrong), _, _ = curves_of(wrong, x)
    deletion = [float(area(c).mean()) for c in (d_right, d_rand, d_wrong)]
    insertion = [float(area(c).mean()) for c in (i_right, i_rand, i_wrong)]
    assert deletion[0] < deletion[1] < deletion[2]
    assert insertion[0] > insertion[1] > insertion[2]
    # and by a margin the interval can tell: the paired difference excludes zero
    _, low, high = mean_interval(area(d_rand) - area(d_right))
    assert low > 0 and high > low


def test_curves_start_and_end_where_they_must():
    x = images(6)
    (deletion, insertion), (full, empty), _ = curves_of(torch.rand(6, SIZE, SIZE), x, steps=4)
    assert deletion.shape == insertion.shape == (6, 5)
    assert torch.equal(deletion[:, 0], full) and torch.equal(deletion[:, -1], empty)
    assert torch.equal(insertion[:, 0], empty) and torch.equal(insertion[:, -1], full)
    # removing the whole quadrant's pixels, in its order, drops the probability step by step
    (d_right, _), _, _ = curves_of(quadrant_map(6, True), x, steps=4)
    assert bool((d_right[:, 1:] <= d_right[:, :-1] + 1e-6).all())


def test_equal_saliency_is_broken_at_random_not_in_raster_order():
    flat = torch.zeros(2, SIZE, SIZE)
    order = pixel_order(flat, torch.Generator().manual_seed(0))
    assert sorted(order[0].tolist()) == list(range(SIZE * SIZE))  # a permutation
    assert order[0].tolist() != list(range(SIZE * SIZE))
    assert not torch.equal(order[0], order[1])
    # a strict order is kept exactly
    ramp = torch.arange(SIZE * SIZE, dtype=torch.float32).view(1, SIZE, SIZE)
    assert pixel_order(ramp, torch.Generator()).tolist()[0] == list(range(SIZE * SIZE))[::-1]


def test_the_interval_is_reproducible_and_shrinks_with_more_images():
    g = torch.Generator().manual_seed(3)
    few, many = torch.rand(20, generator=g), torch.rand(2000, generator=g)
    assert mean_interval(few, seed=4) == mean_interval(few, seed=4)
    m, low, high = mean_interval(few)
    assert low < m < high
    _, low2, high2 = mean_interval(many)
    assert high2 - low2 < (high - low) / 3


def test_blur_keeps_the_mean_and_removes_detail():
    x = images(4)
    b = baseline_images(x, "blur")
    assert b.shape == x.shape
    assert float(b.std()) < 0.6 * float(x.std())
    assert float((b.mean((2, 3)) - x.mean((2, 3))).abs().max()) < 0.2
    with pytest.raises(UserError, match="blur or mean"):
        baseline_images(x, "noise")


def test_occlusion_finds_the_quadrant_that_matters():
    pytest.importorskip("captum")
    x = images(8)
    target = torch.zeros(len(x), dtype=torch.long)
    heat = occlusion(QuadrantModel(), x, target)
    assert heat.shape == (8, SIZE, SIZE)
    half = SIZE // 2
    assert bool((heat[:, :half, :half].mean((1, 2)) > heat[:, half:, half:].mean((1, 2))).all())


def test_unknown_methods_are_refused():
    with pytest.raises(UserError, match="unknown saliency method 'lime'"):
        saliency_maps(QuadrantModel(), images(2), torch.zeros(2, dtype=torch.long), ["lime"],
                      torch.Generator())
