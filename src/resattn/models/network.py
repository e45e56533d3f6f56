"""One builder for every network of the family: stem, stages, head, from an `ArchSpec`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..errors import InvalidOption
from .attention import AttentionModule, AttentionOptions
from .residual import residual_units

STEMS = ("cifar", "imagenet", "mini")


def checkpointed(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`block(x)`, keeping only `x` for the backward pass, which runs the block again with its
    BatchNorm statistics frozen."""
    def contexts() -> tuple[Any, Any]:
        return nullcontext(), frozen_batchnorm(block)

    out = checkpoint(block, x, use_reentrant=False, context_fn=contexts)
    return cast(torch.Tensor, out)


@contextmanager
def frozen_batchnorm(module: nn.Module) -> Iterator[None]:
    """BatchNorm running statistics left as they are (a checkpointed block's recomputation in
    the backward pass must not count its batch a second time)."""
    saved = [(m, m.momentum, m.num_batches_tracked.clone()
              if m.num_batches_tracked is not None else None)
             for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m, _, _ in saved:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, tracked in saved:
            m.momentum = momentum
            if tracked is not None and m.num_batches_tracked is not None:
                m.num_batches_tracked.copy_(tracked)


@dataclass(frozen=True)
class StageSpec:
    """One stage: `units` plain residual units (the first changes width and stride), `modules`
    attention modules whose masks pool `levels` times, then `post_units` plain units."""

    out_chs: int
    stride: int = 1
    units: int = 1
    modules: int = 0
    levels: int = 1
    post_units: int = 0


@dataclass(frozen=True)
class ArchSpec:
    """A whole architecture as data. `p`, `t`, `r` are the paper's attention hyper-parameters."""

    stem: str
    stem_chs: int
    stages: tuple[StageSpec, ...]
    p: int = 1
    t: int = 2
    r: int = 1
    input_size: int = 32
    num_classes: int = 10
    drop_rate: float = 0.0
    description: str = ""


def make_stem(kind: str, in_chans: int, chs: int) -> nn.Sequential:
    if kind == "cifar":  # 3x3 conv, full resolution
        return nn.Sequential(nn.Conv2d(in_chans, chs, 3, padding=1, bias=False))
    if kind == "imagenet":  # 7x7/2 conv + 3x3/2 max-pool: (N, 3, 224, 224) -> (N, 64, 56, 56)
        return nn.Sequential(
            nn.Conv2d(in_chans, chs, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(chs), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
    if kind == "mini":  # 5x5 conv + 2x2 max-pool: (N, 3, 32, 32) -> (N, 32, 16, 16)
        return nn.Sequential(
            nn.Conv2d(in_chans, chs, 5, padding=2, bias=False),
            nn.BatchNorm2d(chs), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
    raise InvalidOption("stem", kind, f"choose one of {', '.join(STEMS)}")


class ResidualAttentionNet(nn.Module):
    """Residual Attention Network (Wang et al., CVPR 2017) and its ResNet baseline.

    `forward(x)` returns logits (N, num_classes). `forward_features` returns the final
    pre-activated feature map, `forward_head` pools, drops out and classifies it.
    `forward_with_masks(x)` also returns the soft mask of every attention module.
    """

    # set by resattn.load_model and pretrained create_model: classes, input size, normalisation
    pretrained_cfg: dict[str, Any]

    def __init__(self, spec: ArchSpec, num_classes: int, in_chans: int = 3,
                 drop_rate: float = 0.0, options: AttentionOptions | None = None):
        super().__init__()
        # every attention module alike: the spec's p, t, r unless `options` says otherwise
        options = options or AttentionOptions(p=spec.p, t=spec.t, r=spec.r)
        self.num_classes = num_classes
        self.stem = make_stem(spec.stem, in_chans, spec.stem_chs)
        stages = []
        chs = spec.stem_chs
        for s in spec.stages:
            blocks: list[nn.Module] = [residual_units(chs, s.out_chs, s.units, s.stride)]
            blocks += [AttentionModule(s.out_chs, s.levels, options) for _ in range(s.modules)]
            if s.post_units:
                blocks.append(residual_units(s.out_chs, s.out_chs, s.post_units))
            stages.append(nn.Sequential(*blocks))
            chs = s.out_chs
        self.stages = nn.Sequential(*stages)
        self.num_features = chs
        # pre-activation networks end with the BN-ReLU the last unit did not apply
        self.norm = nn.Sequential(nn.BatchNorm2d(chs), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(chs, num_classes)
        self.grad_checkpointing = False
        self._init_weights()

    def _init_weights(self) -> None:
        if self.fc.weight.is_meta:  # shapes only (counting, option checks): nothing to draw
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Linear:
        """The final linear layer (timm's convention)."""
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh linear head for `num_classes` outputs (fine-tuning on other classes); the
        body is kept. The new layer sits on the old one's device and dtype."""
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise InvalidOption("num_classes", num_classes, "it must be an integer "
                             ">= 1")
        old = self.fc
        self.fc = nn.Linear(old.in_features, num_classes, device=old.weight.device,
                            dtype=old.weight.dtype)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)
        self.num_classes = num_classes

    def check_input(self, x: torch.Tensor) -> None:
        """A clear error for what the first convolution would refuse obscurely: integer pixels,
        another number of channels, a missing batch axis. (Graph tracers pass proxies, which
        carry no values to check.)"""
        if not isinstance(x, torch.Tensor) or isinstance(x, torch.fx.Proxy):
            return
        chans = self.stem[0].in_channels
        if x.ndim != 4 or x.shape[1] != chans or not x.is_floating_point():
            raise InvalidOption("input", f"{x.dtype} tensor of shape {tuple(x.shape)}",
                                f"the model takes float tensors (N, {chans}, H, W): images "
                                "scaled to [0, 1] and normalised with model.pretrained_cfg's "
                                "mean and std (resattn.predict does this from PIL images)")

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Activation checkpointing (timm's convention): while training with gradients, each
        block of a stage (its residual units, each attention module) keeps only its input and
        recomputes its activations in the backward pass. Less memory for one more forward
        pass; the same losses and gradients, and BatchNorm statistics updated once."""
        self.grad_checkpointing = enable

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.stem(x)
        if self.grad_checkpointing and torch.is_grad_enabled():
            for stage in self.stages.children():
                for block in stage.children():
                    x = checkpointed(block, x)
        else:
            x = self.stages(x)
        return self.norm(x)  # (N, num_features, h, w)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool(x).flatten(1)  # (N, num_features)
        if pre_logits:
            return x
        return self.fc(self.drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def attention_modules(self) -> list[tuple[str, AttentionModule]]:
        """(name, module) of every attention module that has a mask, in forward order.
        Names read `stage<i>.module<j>`, both counted from 1."""
        found = []
        for i, stage in enumerate(self.stages, start=1):
            modules = [m for m in stage.children() if isinstance(m, AttentionModule)]
            found += [(f"stage{i}.module{j}", m) for j, m in enumerate(modules, start=1)
                      if m.soft_mask is not None]
        return found

    @contextmanager
    def _capture_masks(self, store: dict[str, torch.Tensor]):
        def saver(name: str) -> Callable:
            def hook(_module, _inputs, output):
                store[name] = output
            return hook
        handles = [m.soft_mask.register_forward_hook(saver(name))
                   for name, m in self.attention_modules() if m.soft_mask is not None]
        try:
            yield store
        finally:
            for h in handles:
                h.remove()

    def forward_with_masks(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and {"stage<i>.module<j>": M} with each M shaped like that module's trunk output
        (N, C, h, w). `forward` itself is untouched: the masks are read by temporary hooks."""
        masks: dict[str, torch.Tensor] = {}
        with self._capture_masks(masks):
            logits = self(x)
        return logits, masks
