"""The attention explorer in the browser (`resattn serve`): drop an image or pick a CIFAR-10 test
image, see the top-5 and every attention module's soft mask, step through modules and channels,
compare models side by side. Gradio is imported here only (the optional extra `serve`); the
model work is the library's `Explainer` and the pictures are `viz.overlay_array`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .api.explain import Explainer, Explanation
from .data.images import ImageReadError, load_rgb
from .viz import mask_maps, overlay_array

log = logging.getLogger("resattn.serve")
MEAN = "mean over channels"
SHOWN = 224  # pixels of each picture on the page


def cifar_examples(data_dir: str | None, per_class: int = 5) -> dict[str, np.ndarray]:
    """{"cat #0": (32, 32, 3) uint8} of the CIFAR-10 test set, when it is at hand."""
    from .data import load_cifar_splits
    from .errors import UserError

    try:  # the test file alone: one of six
        (test,) = load_cifar_splits("cifar10", ("test",), data_dir, download_ok=False,
                                    progress=False)
    except UserError:
        return {}
    picks: dict[str, np.ndarray] = {}
    for c, name in enumerate(test.classes):
        for i in (test.labels == c).nonzero().flatten()[:per_class].tolist():
            picks[f"{name} #{i}"] = test.images[i].permute(1, 2, 0).numpy()
    return picks


def module_pictures(exp: Explanation, channel: str = MEAN) -> list[tuple[np.ndarray, str]]:
    """One overlay per attention module (the mean mask, or one channel where it exists)."""
    out = []
    size = exp.image.shape[:2]
    for name, mask in exp.masks.items():
        chans = None if channel == MEAN or int(channel) >= mask.shape[0] else [int(channel)]
        (label, heat), = mask_maps({name: mask}, size, chans).items()
        out.append((overlay_array(exp.image, heat, SHOWN),
                    f"{label} [{heat.min():.2f}, {heat.max():.2f}]"))
    return out


def selected_picture(exp: Explanation | None, module: str, channel: str) -> np.ndarray | None:
    if exp is None or module not in exp.masks:
        return None
    mask = exp.masks[module]
    chans = None if channel == MEAN or int(channel) >= mask.shape[0] else [int(channel)]
    (_, heat), = mask_maps({module: mask}, exp.image.shape[:2], chans).items()
    return overlay_array(exp.image, heat, SHOWN)


def channel_choices(gr, count: int, chan: str):
    """The channel menu for a module of `count` channels, keeping `chan` if it still exists."""
    keep = chan if chan == MEAN or int(chan) < count else MEAN
    return gr.update(choices=[MEAN] + [str(c) for c in range(count)], value=keep)


class Actions:
    """What the page does when the user uploads, picks an example or changes the module or
    channel: each returns the values of the page's outputs, in `build_app`'s order (message,
    preview, then per model: top-5, selected mask, all masks, the explanation kept in a State;
    then the channel menu)."""

    def __init__(self, gr, explainers: list[Explainer], examples: dict[str, np.ndarray]):
        self.gr, self.explainers, self.examples = gr, explainers, examples

    def explain(self, image, error: str, mod: str, chan: str) -> tuple:
        if image is None:
            outs: list[Any] = [f"**{error}**" if error else "", None]
            for _ in self.explainers:
                outs += [None, None, None, None]
            return (*outs, self.gr.update())
        shown = image.copy()
        shown.thumbnail((2 * SHOWN, 2 * SHOWN))
        outs = ["", np.asarray(shown.convert("RGB"))]
        exps = [ex(image) for ex in self.explainers]
        for exp in exps:
            outs += [dict(exp.top), selected_picture(exp, mod, chan), module_pictures(exp), exp]
        count = exps[0].channels(mod) if mod in exps[0].masks else 0
        return (*outs, channel_choices(self.gr, count, chan))

    def from_upload(self, path: str | None, mod: str, chan: str) -> tuple:
        if path is None:
            return self.explain(None, "", mod, chan)
        try:
            image = load_rgb(path)
        except ImageReadError as exc:
            log.warning("upload %s refused: %s", Path(path).name, exc)
            return self.explain(None, f"{Path(path).name} cannot be read: {exc}", mod, chan)
        return self.explain(image, "", mod, chan)

    def from_pick(self, name: str | None, mod: str, chan: str) -> tuple:
        if not name:
            return self.explain(None, "", mod, chan)
        from PIL import Image

        return self.explain(Image.fromarray(self.examples[name]), "", mod, chan)

    def reselect(self, mod: str, chan: str, *exps) -> tuple:
        count = next((e.channels(mod) for e in exps if e is not None and mod in e.masks), 0)
        if chan != MEAN and int(chan) >= count:
            chan = MEAN
        pictures = [selected_picture(e, mod, chan) for e in exps]
        return (*pictures, channel_choices(self.gr, count, chan))


def _model_columns(gr, explainers: list[Explainer]) -> tuple[list[tuple], list]:
    """One column per model: its top-5, the selected module's mask, every module's mask; and a
    State per model keeping its last explanation (for re-selecting without recomputing)."""
    columns, states = [], []
    with gr.Row():
        for i, ex in enumerate(explainers):
            with gr.Column():
                gr.Markdown(f"### {ex.name}")
                top = gr.Label(num_top_classes=5, label="prediction", elem_id=f"top-{i}")
                chosen = gr.Image(label="selected module", elem_id=f"selected-{i}",
                                  interactive=False, height=SHOWN)
                gallery = gr.Gallery(label="all modules (mean over channels)",
                                     elem_id=f"masks-{i}", columns=3, height="auto")
            columns.append((top, chosen, gallery))
            states.append(gr.State(None))
    return columns, states


def build_app(explainers: list[Explainer], examples: dict[str, np.ndarray] | None = None):
    """The page: input, then one column per model (top-5, every module's mask, the selected
    module and channel)."""
    import gradio as gr

    examples = examples or {}
    modules = explainers[0].modules
    actions = Actions(gr, explainers, examples)
    with gr.Blocks(title="resattn: where does the network look?") as app:
        gr.Markdown("## Residual Attention Network explorer\nDrop an image (or pick a CIFAR-10 "
                    "test image): the top-5 classes and, for every attention module, its soft "
                    "mask over the input, coloured on a fixed 0-to-1 scale (blue: the mask "
                    "damps the trunk's features, red: it lets them through), so that models "
                    "and images compare.")
        with gr.Row():
            upload = gr.File(label="image", type="filepath", elem_id="upload")
            preview = gr.Image(label="your image", elem_id="preview", interactive=False,
                               height=SHOWN)
            pick = gr.Dropdown(choices=list(examples), label="or a CIFAR-10 test image",
                               value=None, visible=bool(examples), elem_id="pick")
            with gr.Column():
                module = gr.Dropdown(choices=modules, value=modules[0], label="module",
                                     elem_id="module")
                channel = gr.Dropdown(choices=[MEAN], value=MEAN, label="channel",
                                      elem_id="channel")
        message = gr.Markdown("", elem_id="message")
        columns, states = _model_columns(gr, explainers)
        outputs: list[Any] = [message, preview]
        for (top, chosen, gallery), state in zip(columns, states):
            outputs += [top, chosen, gallery, state]
        outputs.append(channel)
        upload.upload(actions.from_upload, [upload, module, channel], outputs)
        pick.input(actions.from_pick, [pick, module, channel], outputs)
        chosen_images = [c[1] for c in columns]
        for control in (module, channel):  # user choices only: no loop through the updates
            control.input(actions.reselect, [module, channel, *states],
                          [*chosen_images, channel])
    return app
