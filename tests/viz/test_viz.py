"""The pictures: mask maps are the masks' own values, figures have one panel per map, and PNGs
are written (or refused in one line)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from resattn.errors import UserError
from resattn.viz import confusion_figure, mask_figure, mask_maps, save_figure, training_curves


def test_mask_maps_mean_and_channels_upsampled():
    m = torch.stack([torch.full((2, 2), 0.2), torch.full((2, 2), 0.6)])  # (C=2, 2, 2)
    maps = mask_maps({"stage1": m}, (8, 8))
    assert list(maps) == ["stage1"] and maps["stage1"].shape == (8, 8)
    assert np.allclose(maps["stage1"], 0.4)  # the mean over channels
    per = mask_maps({"stage1": m}, (4, 4), channels=[1])
    assert list(per) == ["stage1 ch1"] and np.allclose(per["stage1 ch1"], 0.6)
    gradient = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])  # left dark, right bright
    up = mask_maps({"s": gradient}, (8, 8))["s"]
    assert up[:, 0].max() < up[:, -1].min()  # bilinear keeps the left-right order
    with pytest.raises(UserError, match="channel 5 does not exist"):
        mask_maps({"stage1": m}, (8, 8), channels=[5])


def test_mask_figure_panels_and_png(tmp_path):
    image = np.random.default_rng(0).random((16, 16, 3))
    maps = {f"m{i}": np.full((16, 16), i / 10) for i in range(7)}
    fig = mask_figure(image, maps, "title", columns=4)
    visible = [ax for ax in fig.axes if ax.images]
    assert len(visible) == 8  # the input and one overlay per map
    assert visible[1].get_title().startswith("m0")
    path = save_figure(fig, tmp_path / "deep" / "masks.png")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > png.size[1] > 100


def test_curves_and_confusion(tmp_path):
    rows = [{"epoch": e, "train_loss": 2 / e, "val_loss": 2.2 / e, "train_acc": 0.3 * e,
             "val_acc": 0.28 * e, "lr": 0.1 / e} for e in (1, 2, 3)]
    fig = training_curves(rows, "run")
    lines = [ln for ax in fig.axes for ln in ax.get_lines()]
    assert any(list(ln.get_xdata()) == [1, 2, 3] for ln in lines)
    save_figure(fig, tmp_path / "curves.png")
    fig = confusion_figure([[5, 1], [0, 6]], ["cat", "dog"], "c")
    save_figure(fig, tmp_path / "confusion.png")
    assert (tmp_path / "confusion.png").stat().st_size > 1000


def test_curves_against_time_show_the_test_series_where_logged():
    """`x="time"`: minutes of training on the axis; test/EMA-test curves of --monitor-test runs;
    no val curve for a run without a validation split."""
    rows = [{"epoch": e, "train_loss": 2 / e, "val_loss": None, "train_acc": 0.3 * e,
             "val_acc": None, "test_acc": 0.25 * e, "ema_test_acc": 0.27 * e, "lr": 0.1 / e,
             "elapsed_s": 90.0 * e} for e in (1, 2, 3)]
    fig = training_curves(rows, x="time")
    acc_ax = fig.axes[1]
    labels = {ln.get_label(): ln for ln in acc_ax.get_lines()}
    assert set(labels) == {"train", "test", "test (EMA)"}
    assert list(labels["test"].get_xdata()) == [1.5, 3.0, 4.5]
    assert list(labels["test (EMA)"].get_ydata()) == pytest.approx([27, 54, 81])
    assert acc_ax.get_xlabel() == "training time (min)"
    with pytest.raises(ValueError, match="'epoch' or 'time'"):
        training_curves(rows, x="step")


def test_curves_draw_the_logged_steps_and_say_when_a_run_is_too_short():
    """A one-epoch run: its logged steps are the loss and learning-rate lines (in fractional
    epochs or minutes); with neither steps nor a second epoch, each panel says it is too short
    instead of drawing a dot."""
    rows = [{"epoch": 1, "step": 40, "train_loss": 1.5, "val_loss": 1.6, "train_acc": 0.4,
             "val_acc": 0.38, "lr": 0.05, "elapsed_s": 120.0}]
    steps = [{"step": s, "epoch": s / 40, "loss": 2.3 - s / 40, "lr": 0.1 * (1 - s / 50),
              "elapsed_s": 3.0 * s} for s in range(2, 41, 2)]
    fig = training_curves(rows, steps=steps)
    loss_ax, acc_ax, lr_ax = fig.axes
    batch = next(ln for ln in loss_ax.get_lines() if ln.get_label() == "train (batch)")
    assert list(batch.get_xdata()) == pytest.approx([s / 40 for s in range(2, 41, 2)])
    assert len(lr_ax.get_lines()) == 1 and len(lr_ax.get_lines()[0].get_xdata()) == 20
    assert not [t for t in loss_ax.texts + lr_ax.texts]  # curves, so no notice
    assert "too short for a curve: 1 point" in acc_ax.texts[0].get_text()
    timed = training_curves(rows, x="time", steps=steps).axes[2].get_lines()[0]
    assert list(timed.get_xdata())[-1] == pytest.approx(2.0)  # 120 s
    bare = training_curves(rows)
    assert all("too short for a curve: 1 point" in ax.texts[0].get_text() for ax in bare.axes)
    # a run stopped by its budget half-way through the epoch: its epoch row (validation) sits
    # at 0.5 epochs, where training ended, in the validation colour
    stopped = training_curves([{**rows[0], "step": 20}], steps=steps[:10])
    val = next(ln for ln in stopped.axes[1].get_lines() if ln.get_label() == "val")
    assert list(val.get_xdata()) == [0.5] and val.get_color() == "tab:orange"
    with_acc = training_curves(rows, steps=[{**r, "acc": 0.1 + r["epoch"] / 4} for r in steps])
    running = with_acc.axes[1].get_lines()[0]
    assert running.get_label() == "train (running, per epoch)" and len(running.get_xdata()) == 20
    assert not with_acc.axes[1].texts


def test_save_figure_refuses_a_folder_and_an_unwritable_place(tmp_path):
    fig = training_curves([{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "lr": 0.1}])
    with pytest.raises(UserError, match="is a directory"):
        save_figure(fig, tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        save_figure(fig, tmp_path / "file" / "curves.png")
