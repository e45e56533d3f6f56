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


def build_app(explainers: list[Explainer], examples: dict[str, np.ndarray] | None = None):
    """The page: input, then one column per model (top-5, every module's mask, the selected
    module and channel)."""
    import gradio as gr
    from PIL import Image

    examples = examples or {}
    modules = explainers[0].modules
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
        states, columns = [], []
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

        def explain(image: Image.Image | None, error: str, mod: str, chan: str):
            if image is None:
                outs: list[Any] = [f"**{error}**" if error else "", None]
                for _ in explainers:
                    outs += [None, None, None, None]
                return (*outs, gr.update())
            shown = image.copy()
            shown.thumbnail((2 * SHOWN, 2 * SHOWN))
            outs = ["", np.asarray(shown.convert("RGB"))]
            exps = []
            for ex in explainers:
                exp = ex(image)
                exps.append(exp)
                outs += [dict(exp.top), selected_picture(exp, mod, chan),
                         module_pictures(exp), exp]
            count = exps[0].channels(mod) if mod in exps[0].masks else 0
            return (*outs, gr.update(choices=[MEAN] + [str(c) for c in range(count)],
                                     value=chan if chan == MEAN or int(chan) < count else MEAN))

        def from_upload(path: str | None, mod: str, chan: str):
            if path is None:
                return explain(None, "", mod, chan)
            try:
                image = load_rgb(path)
            except ImageReadError as exc:
                log.warning("upload %s refused: %s", Path(path).name, exc)
                return explain(None, f"{Path(path).name} cannot be read: {exc}", mod, chan)
            return explain(image, "", mod, chan)

        def from_pick(name: str | None, mod: str, chan: str):
            if not name:
                return explain(None, "", mod, chan)
            return explain(Image.fromarray(examples[name]), "", mod, chan)

        def reselect(mod: str, chan: str, *exps):
            count = next((e.channels(mod) for e in exps if e is not None and mod in e.masks), 0)
            if chan != MEAN and int(chan) >= count:
                chan = MEAN
            pictures = [selected_picture(e, mod, chan) for e in exps]
            return (*pictures, gr.update(choices=[MEAN] + [str(c) for c in range(count)],
                                         value=chan))

        outputs: list[Any] = [message, preview]
        for (top, chosen, gallery), state in zip(columns, states):
            outputs += [top, chosen, gallery, state]
        outputs.append(channel)
        upload.upload(from_upload, [upload, module, channel], outputs)
        pick.input(from_pick, [pick, module, channel], outputs)
        chosen_images = [c[1] for c in columns]
        for control in (module, channel):  # user choices only: no loop through the updates
            control.input(reselect, [module, channel, *states], [*chosen_images, channel])
    return app
