"""The model family as data: one table of architectures, one builder (timm style)."""

from __future__ import annotations

import fnmatch
from dataclasses import fields
from typing import Any

from ..errors import InvalidOption
from .activations import ATTENTION_TYPES
from .attention import RESIDUAL_TYPES, AttentionOptions
from .network import ArchSpec, ResidualAttentionNet, StageSpec
from .soft_mask import MASK_TYPES


def _cifar(m: int, p: int = 1, t: int = 2, r: int = 1) -> ArchSpec:  # pragma: no mutate block
    """The paper's CIFAR family, depth 36m + 20 (ResNet-164 widths 64/128/256, bottleneck /4).

    Each stage opens and closes with one plain unit (6 units x 3 layers + stem conv + FC = 20
    layers) around m attention modules; mask pooling levels 3/2/1 put every mask bottom at 4x4
    for a 32x32 input.
    """
    depth = 3 * m * 3 * (2 * p + t) + 20
    return ArchSpec(
        stem="cifar", stem_chs=16, p=p, t=t, r=r,
        stages=(StageSpec(64, 1, units=1, modules=m, levels=3, post_units=1),
                StageSpec(128, 2, units=1, modules=m, levels=2, post_units=1),
                StageSpec(256, 2, units=1, modules=m, levels=1, post_units=1)),
        description=f"paper CIFAR Attention-{depth} (p={p}, t={t}, r={r}, {m} modules/stage)",
    )


def _counts(modules: tuple[int, ...]) -> str:  # pragma: no mutate block
    return "/".join(map(str, modules))


def _wide(modules: tuple[int, int, int]) -> ArchSpec:  # pragma: no mutate block
    return ArchSpec(
        stem="cifar", stem_chs=32,
        stages=(StageSpec(128, 1, units=1, modules=modules[0], levels=3),
                StageSpec(256, 2, units=1, modules=modules[1], levels=2),
                StageSpec(512, 2, units=1, modules=modules[2], levels=1),
                StageSpec(1024, 1, units=3)),
        description=f"wide CIFAR layout of the public ports, {_counts(modules)} modules/stage",
    )


def _imagenet(modules: tuple[int, int, int]) -> ArchSpec:  # pragma: no mutate block
    return ArchSpec(
        stem="imagenet", stem_chs=64, input_size=224, num_classes=1000,
        stages=(StageSpec(256, 1, units=1, modules=modules[0], levels=3),
                StageSpec(512, 2, units=1, modules=modules[1], levels=2),
                StageSpec(1024, 2, units=1, modules=modules[2], levels=1),
                StageSpec(2048, 2, units=3)),
        description=f"paper ImageNet layout (Table 2), {_counts(modules)} modules/stage",
    )


_ARCHS: dict[str, ArchSpec] = {
    "attention56": _cifar(1),
    "attention92": _cifar(2),
    "attention128": _cifar(3),
    "attention164": _cifar(4),
    "attention236": _cifar(6),
    "attention452": _cifar(6, p=2, t=4, r=3),
    "attention56_wide": _wide((1, 1, 1)),
    "attention92_wide": _wide((1, 2, 3)),
    "attention56_imagenet": _imagenet((1, 1, 1)),
    "attention92_imagenet": _imagenet((1, 2, 3)),
    "attention56_mini": ArchSpec(
        stem="mini", stem_chs=32, drop_rate=0.5,
        stages=(StageSpec(128, 1, units=1, modules=1, levels=2),
                StageSpec(256, 2, units=1, modules=1, levels=1),
                StageSpec(1024, 2, units=3)),
        description="compact variant of the TensorFlow 2 re-implementation",
    ),
    "resnet164": ArchSpec(
        stem="cifar", stem_chs=16,
        stages=(StageSpec(64, 1, units=18), StageSpec(128, 2, units=18),
                StageSpec(256, 2, units=18)),
        description="pre-activation ResNet-164 baseline (paper Table 6)",
    ),
    # the CIFAR layout at 1/4 width: every code path of attention56 (three modules, mask depths
    # 3/2/1) at a fraction of the cost, for tests and smoke runs (timm's test_* models)
    "attention_test": ArchSpec(
        stem="cifar", stem_chs=8,
        stages=(StageSpec(16, 1, units=1, modules=1, levels=3, post_units=1),
                StageSpec(32, 2, units=1, modules=1, levels=2, post_units=1),
                StageSpec(64, 2, units=1, modules=1, levels=1, post_units=1)),
        description="attention56 at 1/4 width, for tests and smoke runs (not a paper model)",
    ),
}

ATTENTION_KEYS = tuple(f.name for f in fields(AttentionOptions))  # p, t, r, attention, ...
OVERRIDES = ("in_chans", "drop_rate", *ATTENTION_KEYS)


def list_models(pattern: str | None = None, pretrained: bool = False) -> list[str]:
    """Names of the registered models, in table order; `pattern` filters them with shell-style
    wildcards as timm does (`list_models("attention5*")`). `pretrained=True`: the tags of the
    published weights instead (`attention56.cifar10`), which create_model and load_model take."""
    if pretrained:
        from ..weights import list_weights

        return list_weights(pattern)
    if pattern is None:
        return list(_ARCHS)
    return [name for name in _ARCHS if fnmatch.fnmatchcase(name, pattern)]


def get_spec(name: str) -> ArchSpec:
    try:
        return _ARCHS[name]
    except KeyError:
        raise InvalidOption("model", name, f"valid models: {', '.join(list_models())}") from None


def _check_options(num_classes: Any, opts: dict[str, Any]) -> None:
    def positive_int(key: str, value: Any, minimum: int = 1) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidOption(key, value, f"it must be an integer >= {minimum}")

    positive_int("num_classes", num_classes)
    if "in_chans" in opts:
        positive_int("in_chans", opts["in_chans"])
    for key in ("p", "t", "r"):
        if key in opts:
            positive_int(key, opts[key], minimum=0 if key == "p" else 1)
    if "drop_rate" in opts:
        rate = opts["drop_rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise InvalidOption("drop_rate", rate, "it must lie in [0, 1)")
    for key in ("upsample_align_corners", "mask_head_bias"):
        if key in opts and not isinstance(opts[key], bool):
            raise InvalidOption(key, opts[key], "it must be true or false")
    for key, valid in (("attention", ATTENTION_TYPES), ("residual", RESIDUAL_TYPES),
                       ("mask", MASK_TYPES)):
        if key in opts and opts[key] not in valid:
            raise InvalidOption(key, opts[key], f"choose one of {', '.join(valid)}")


def create_model(name: str, num_classes: int | None = None, pretrained: bool = False,
                 **overrides: Any) -> ResidualAttentionNet:
    """Build a registered model, with fresh weights or published ones.

    Args:
        name: one of `list_models()`, or a weights tag of `list_models(pretrained=True)`
            (`attention56.cifar10`: that architecture with those weights).
        num_classes: output classes (default: 10 for CIFAR models, 1000 for ImageNet ones, the
            weights' own with `pretrained`; another count keeps the pretrained body and starts a
            fresh classifier, for fine-tuning).
        pretrained: load the model's published weights (checked against their SHA-256).
        **overrides: in_chans, drop_rate, attention ('mixed' | 'channel' | 'spatial'),
            residual ('arl' | 'nal' | 'none'), mask ('encoder_decoder' | 'local'), p, t, r,
            upsample_align_corners (True: Caffe's Interp, as the authors' prototxts),
            mask_head_bias (False: no bias on the mask head's last conv, as the prototxts).
    """
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(OVERRIDES)}")
    if name not in _ARCHS and "." in name:
        from ..weights import is_tag

        if is_tag(name):
            return _pretrained(name, num_classes, overrides)
    if pretrained:
        from ..weights import default_tag, list_weights

        tag = default_tag(name) if name in _ARCHS else None
        if tag is None:
            raise InvalidOption("model", name, "no published weights for it; published: "
                                f"{', '.join(list_weights()) or 'none'}")
        return _pretrained(tag, num_classes, overrides)
    spec = get_spec(name)
    num_classes = spec.num_classes if num_classes is None else num_classes
    _check_options(num_classes, overrides)
    attention = {k: overrides[k] for k in ATTENTION_KEYS if k in overrides}
    options = AttentionOptions(**{"p": spec.p, "t": spec.t, "r": spec.r, **attention})
    return ResidualAttentionNet(spec, num_classes, overrides.get("in_chans", 3),
                                overrides.get("drop_rate", spec.drop_rate), options)


# overrides that change the weights' shapes or use
ARCH_KEYS = ("attention", "residual", "mask", "upsample_align_corners", "mask_head_bias")
ARCH_DEFAULTS = {"upsample_align_corners": False, "mask_head_bias": True}


def _pretrained(tag: str, num_classes: int | None, overrides: dict[str, Any]
                ) -> ResidualAttentionNet:
    from ..weights import load_state

    state, entry = load_state(tag)
    cfg = entry["config"]
    spec = get_spec(entry["model"])
    trained = {"in_chans": 3, "p": spec.p, "t": spec.t, "r": spec.r, **ARCH_DEFAULTS,
               **{k: v for k, v in cfg.items() if k in OVERRIDES}}
    for key, value in overrides.items():  # only what leaves the weights' meaning intact
        if key != "drop_rate" and value != trained.get(key):
            raise InvalidOption(key, value, f"the weights {tag} were trained with "
                                f"{key}={trained.get(key)!r}; drop it")
    opts = {k: cfg.get(k, ARCH_DEFAULTS.get(k)) for k in ARCH_KEYS}
    if cfg.get("drop_rate") is not None:
        opts["drop_rate"] = cfg["drop_rate"]
    opts.update({k: v for k, v in overrides.items() if k == "drop_rate"})
    model = create_model(entry["model"], num_classes=entry["num_classes"], **opts)
    model.load_state_dict(state)
    if num_classes is not None and num_classes != entry["num_classes"]:
        model.reset_classifier(num_classes)  # the pretrained body, a fresh head
    # the keys of resattn.load_model's: `source` where the weights came from, `weights` which
    # of the run's weights they are (raw or EMA, as the run's validation chose)
    weights = entry.get("weights") or (entry.get("training") or {}).get("weights") or "raw"
    model.pretrained_cfg = {"source": tag, "weights": weights, "classes": entry["classes"]
                            if model.num_classes == entry["num_classes"] else None,
                            "num_classes": model.num_classes, "input_size": entry["input_size"],
                            "crop_pct": entry["crop_pct"], "mean": _tensor(entry, "mean"),
                            "std": _tensor(entry, "std"), "config": dict(cfg)}
    return model


def _tensor(entry: dict[str, Any], key: str):
    from ..weights import tensor_of

    return tensor_of(entry[key], entry[f"{key}_shape"])
