"""Seeded, stratified hold-outs and subsets, and symmetric label noise (paper Table 5)."""

from __future__ import annotations

import torch

from ..errors import InvalidOption


def stratified_indices(labels: torch.Tensor, count: int, seed: int) -> tuple[torch.Tensor,
                                                                              torch.Tensor]:
    """Split range(N) into (rest, chosen) with `count` chosen, every class in proportion.

    Per-class quotas use the largest-remainder rule, so they sum to `count` exactly. Both index
    tensors are sorted, so the result depends on the seed alone.
    """
    n = len(labels)
    if not 0 <= count <= n:
        raise ValueError(f"cannot choose {count} of {n} images")
    g = torch.Generator().manual_seed(seed)
    classes, sizes = torch.unique(labels, return_counts=True)
    exact = sizes.double() * count / n
    quota = exact.floor().long()
    remainder = count - int(quota.sum())
    if remainder:
        # ties broken by class order, deterministic
        order = torch.argsort(exact - quota.double(), descending=True, stable=True)
        quota[order[:remainder]] += 1
    chosen = []
    for cls, q in zip(classes.tolist(), quota.tolist()):
        members = torch.nonzero(labels == cls).flatten()
        chosen.append(members[torch.randperm(len(members), generator=g)[:q]])
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.cat(chosen)] = True
    return torch.nonzero(~mask).flatten(), torch.nonzero(mask).flatten()


def add_label_noise(labels: torch.Tensor, fraction: float, num_classes: int,
                    seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace round(fraction * N) labels, chosen at random, by a *different* class drawn
    uniformly. Returns (noisy labels, indices changed)."""
    if not 0 <= fraction <= 1:
        raise InvalidOption("label_noise", fraction, "choose a fraction in [0, 1]")
    if num_classes < 2 and fraction > 0:
        raise InvalidOption("label_noise", fraction, "label noise needs at least two classes")
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    changed = torch.randperm(n, generator=g)[: round(fraction * n)].sort().values
    # an offset in 1..K-1 always lands on another class
    offset = torch.randint(1, num_classes, (len(changed),), generator=g) if len(changed) else \
        torch.zeros(0, dtype=torch.long)
    noisy = labels.clone()
    noisy[changed] = (labels[changed] + offset) % num_classes
    return noisy, changed
