"""The explorer's model work without a browser: Explainer predicts like `predict`, returns one
mask per attention module, and the pictures follow the chosen module and channel."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cli
from PIL import Image

import resattn
from resattn.api.explain import Explainer
from resattn.errors import UserError
from resattn.serve import MEAN, module_pictures, selected_picture

TAG = "attention56.cifar10"


def test_explainer_predicts_like_predict_and_returns_every_mask():
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (60, 80, 3), np.uint8))
    exp = Explainer(TAG)(img)
    expected = resattn.predict(TAG, [img], topk=5, amp="off")[0]
    assert [c for c, _ in exp.top] == [c for c, _ in expected]
    assert [p for _, p in exp.top] == pytest.approx([p for _, p in expected], abs=1e-4)
    assert list(exp.masks) == ["stage1.module1", "stage2.module1", "stage3.module1"]
    assert exp.image.shape == (32, 32, 3) and exp.channels("stage3.module1") == 256
    assert all(0 <= float(m.min()) and float(m.max()) <= 1 for m in exp.masks.values())

    pictures = module_pictures(exp)
    assert len(pictures) == 3 and all(p.shape == (224, 224, 3) for p, _ in pictures)
    mean = selected_picture(exp, "stage2.module1", MEAN)
    other_module = selected_picture(exp, "stage3.module1", MEAN)
    channel = selected_picture(exp, "stage2.module1", "7")
    assert not np.array_equal(mean, other_module) and not np.array_equal(mean, channel)
    assert selected_picture(exp, "stage9.module1", MEAN) is None


def test_a_model_without_masks_is_refused():
    baseline = resattn.create_model("resnet164")  # the paper's baseline: no attention module
    baseline.pretrained_cfg = resattn.load_model(TAG).pretrained_cfg
    with pytest.raises(UserError, match="no attention masks"):
        Explainer(baseline)


def test_explain_takes_paths_and_draws_the_visualize_picture(tmp_path):
    img = Image.fromarray(np.random.default_rng(2).integers(0, 255, (40, 40, 3), np.uint8))
    img.save(tmp_path / "photo.png")
    model = resattn.load_model(TAG)
    (from_path,), (from_image,) = (resattn.explain(model, [tmp_path / "photo.png"], topk=3),
                                   resattn.explain(TAG, [img], topk=3))
    direct = Explainer(TAG, topk=3)(img).top
    for other in (from_image.top, direct):
        assert [c for c, _ in from_path.top] == [c for c, _ in other]
        assert [p for _, p in from_path.top] == pytest.approx([p for _, p in other], abs=1e-5)
    assert len(from_path.top) == 3

    # the original (40x40, not the model's 32x32 view), the model's view, then one overlay per
    # module; with channels, one per module and channel; a colour bar
    fig = from_path.figure()
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 2 + 3 and fig.texts[0].get_text().startswith("predicted ")
    assert [ax.get_title() for ax in shown[:2]] == ["original 40x40", "model's view"]
    assert from_path.original.shape == (40, 40, 3) and from_path.image.shape == (32, 32, 3)
    assert len([ax for ax in from_path.figure(channels=[0, 5]).axes if ax.images]) == 2 + 6
    bar = next(ax for ax in fig.axes if ax.get_ylabel())
    assert bar.get_ylabel() == "mask value (fixed scale)"
    assert all(im.get_clim() == (0.0, 1.0) for ax in shown[2:] for im in ax.images[1:])
    stretched = from_path.figure(scale="stretch")
    assert next(ax for ax in stretched.axes if ax.get_ylabel()).get_ylabel() == \
        "each panel stretched to its own range"
    with pytest.raises(UserError, match="scale='log' is not valid; choose fixed or stretch"):
        from_path.figure(scale="log")
    with pytest.raises(UserError, match="channel 64 does not exist"):
        from_path.figure(channels=[64])

    written = from_path.save(tmp_path / "masks.png", title="my photo")
    with Image.open(written) as png:
        assert png.format == "PNG" and png.width > png.height > 100


def test_a_model_without_attention_masks_is_refused_in_one_line():
    import torch

    with pytest.raises(UserError, match="explain needs a Residual Attention Network, not a "
                                        "Linear"):
        Explainer(torch.nn.Linear(2, 2))


def test_a_trained_and_an_untrained_model_look_different_on_the_fixed_scale():
    """The default scale colours a mask value the same in every picture, so an untrained
    model's masks (about 0.5 everywhere) do not look like a trained model's; stretched, each
    picture would span the whole colour map whatever the model."""
    import torch

    from resattn.viz import mask_maps, overlay_array

    trained = resattn.load_model(TAG)
    torch.manual_seed(0)
    untrained = resattn.create_model("attention56")
    untrained.pretrained_cfg = trained.pretrained_cfg
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8))
    colours, levels = [], []
    for model in (trained, untrained):
        exp = Explainer(model)(img)
        heat = mask_maps(exp.masks, (32, 32))["stage1.module1"]
        levels.append(float(heat.mean()))
        colours.append(overlay_array(exp.image, heat, 32).astype(float).mean(axis=(0, 1)))
        stretched = overlay_array(exp.image, heat, 32, "stretch")
        assert not np.array_equal(stretched, overlay_array(exp.image, heat, 32))
    assert abs(levels[0] - levels[1]) > 0.15, levels
    assert np.abs(colours[0] - colours[1]).max() > 64, colours  # of 255: another colour


def test_gradcam_is_drawn_beside_the_masks(small_run, tmp_path):
    pytest.importorskip("captum")
    img = Image.fromarray(np.random.default_rng(5).integers(0, 255, (32, 32, 3), np.uint8))
    plain, with_cam = Explainer(TAG)(img), Explainer(TAG, gradcam=True)(img)
    assert plain.gradcam is None and with_cam.top == plain.top
    cam = with_cam.gradcam
    assert cam.shape == (32, 32) and cam.min() >= 0 and cam.max() == pytest.approx(1.0)
    titles = [ax.get_title() for ax in with_cam.figure().axes if ax.images]
    assert len(titles) == 1 + 3 + 1 and titles[-1].startswith("Grad-CAM / max")

    img.save(tmp_path / "x.png")
    out = tmp_path / "v"
    for method in ("mask", "gradcam"):
        proc = cli("visualize", str(small_run), str(tmp_path / "x.png"), "--out",
                   str(out / method), "--method", method)
        assert proc.returncode == 0, proc.stderr
    with Image.open(out / "mask" / "x_masks.png") as a, \
            Image.open(out / "gradcam" / "x_masks.png") as b:
        assert b.width > a.width  # one panel more
