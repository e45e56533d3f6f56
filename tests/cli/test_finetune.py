"""Published weights: their registry facts hold on the real CIFAR-10, every command takes a tag,
the safetensors export reads back, and fine-tuning from them beats training from scratch."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from conftest import assert_same_state, assert_user_error, cli
from PIL import Image

import resattn
from resattn.data import load_cifar
from resattn.data.cifar import CIFAR10_CLASSES
from resattn.errors import UserError
from resattn.weights import default_tag, get_weights, list_weights, sha256_of, weights_file

TAG = "attention56.cifar10"


@pytest.mark.slow
@pytest.mark.parametrize("tag", list_weights())
def test_shipped_weights_score_what_the_registry_says(tag, cifar10_dir):
    """Inference on the full 10,000-image test set, fp32: the registry's top-1 within 0.1."""
    entry = get_weights(tag)
    assert sha256_of(weights_file(tag)) == entry["sha256"]
    result = resattn.evaluate(tag, data_dir=str(cifar10_dir), amp="off", device="cpu")
    assert result["images"] == entry["metrics"]["test_images"] == 10_000
    assert abs(result["top1"] - entry["metrics"]["top1"]) <= 0.001


def test_registry_entries_are_complete():
    for tag in list_weights():
        e = get_weights(tag)
        assert tag.startswith(e["model"] + ".") and e["file"].endswith(".safetensors")
        assert len(e["classes"]) == e["num_classes"] and e["config"]["model"] == e["model"]
        assert {"top1", "top5", "top1_tta", "top5_tta"} <= set(e["metrics"])
        assert {"command", "hardware", "date", "train_time_s"} <= set(e["training"])
        assert e["config"]["data_dir"] is None  # no path of the machine that trained it


def test_pretrained_model_matches_its_file_and_a_tampered_file_is_refused(tmp_path,
                                                                          monkeypatch):
    model = resattn.create_model("attention56", pretrained=True)
    from resattn.weights.safetensors import load_file

    tag = default_tag("attention56")  # the model's first published tag
    state, _ = load_file(weights_file(tag))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.pretrained_cfg["classes"][3] == "cat"
    head = resattn.create_model(tag, num_classes=5)  # fine-tuning: body kept, fresh head
    assert head.num_classes == 5 and torch.equal(head.stem[0].weight, model.stem[0].weight)
    bad = tmp_path / "w.safetensors"
    raw = bytearray(weights_file(tag).read_bytes())
    raw[-100] ^= 0xFF
    bad.write_bytes(bytes(raw))
    monkeypatch.setattr("resattn.weights.weights_file", lambda tag: bad)
    with pytest.raises(resattn.errors.UserError, match="does not match its SHA-256"):
        resattn.create_model("attention56", pretrained=True)


def test_pretrained_overrides_must_match_what_the_weights_were_trained_with():
    tag = default_tag("attention56")
    same = resattn.create_model(tag, in_chans=3, p=1, t=2, r=1, residual="arl", drop_rate=0.2)
    # one meaning per key, as load_model's: where the weights came from, and which they are
    assert same.pretrained_cfg["source"] == tag and same.drop.p == 0.2
    assert same.pretrained_cfg["weights"] == resattn.load_model(tag).pretrained_cfg["weights"]
    assert same.pretrained_cfg["weights"] in ("raw", "ema")
    for key, value, trained in (("in_chans", 1, "3"), ("p", 2, "1"), ("residual", "nal", "'arl'"),
                                ("mask_head_bias", False, "True")):
        with pytest.raises(resattn.errors.InvalidOption,
                           match=f"were trained with {key}={trained}; drop it"):
            resattn.create_model(tag, **{key: value})
    with pytest.raises(ValueError, match="unknown option"):  # not an option, even if trained so
        resattn.create_model(tag, lr=0.2)


def test_tags_in_commands_and_safetensors_export(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "x.png")
    pred = cli("predict", TAG, str(tmp_path / "x.png"), "--json", "--amp", "off")
    assert pred.returncode == 0, pred.stderr
    top = json.loads(pred.stdout)["predictions"][0]["top"]
    assert [t["class"] for t in top] != [] and all(t["class"] in CIFAR10_CLASSES for t in top)
    out = tmp_path / "shared"
    assert cli("export", TAG, "--format", "safetensors", "--out", str(out)).returncode == 0
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "README.md"}
    assert "## Limits" in (out / "README.md").read_text()
    back = resattn.load_model(out)
    ref = resattn.load_model(TAG)
    assert_same_state(back, ref)
    # an earlier export is written over; a folder of the user's only with --force, which
    # touches nothing but the three files
    assert cli("export", TAG, "--format", "safetensors", "--out", str(out)).returncode == 0
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "setup.py").write_text("keep me")
    assert cli("export", TAG, "--format", "safetensors", "--out",
               str(tmp_path / "project")).returncode == 2
    assert cli("export", TAG, "--format", "safetensors", "--out", str(tmp_path / "project"),
               "--force").returncode == 0
    assert (tmp_path / "project" / "setup.py").read_text() == "keep me"
    again = cli("visualize", str(out), str(tmp_path / "x.png"), "--out", str(tmp_path / "v"))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "v" / "x_masks.png").is_file()
    assert_user_error(cli("evaluate", "attention57.cifar10"),
                      f"is neither a file, a folder nor a published tag; published tags: {TAG}")


def test_predict_an_image_alone_uses_the_default_published_weights(tmp_path):
    """`resattn predict photo.png`, the first thing many try: the published weights classify it,
    and one line on stderr says so; a lone argument that is no image is a one-line error."""
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    alone = cli("predict", str(tmp_path / "a.png"), "--json", "--amp", "off")
    assert alone.returncode == 0, alone.stderr
    default = default_tag("attention56")  # what create_model(pretrained=True) and serve load
    assert alone.stderr.strip().splitlines() == [
        f"resattn predict: no model given, so the published {default} (CIFAR-10's 10 classes) "
        "classifies it; name a model first for another: resattn predict MODEL IMAGE..."]
    doc = json.loads(alone.stdout)
    named = json.loads(cli("predict", default, str(tmp_path / "a.png"), "--json", "--amp",
                           "off").stdout)
    assert doc == named and doc["checkpoint"] == default
    assert_user_error(cli("predict", str(tmp_path)),
                      "the first argument is a model or a tag, then images or folders")


@pytest.mark.slow
def test_a_tag_names_a_real_cat(tmp_path, cifar10_dir):
    _, test = load_cifar("cifar10", cifar10_dir, download_ok=False, progress=False)
    Image.fromarray(test.images[0].permute(1, 2, 0).numpy()).save(tmp_path / "cat.png")
    pred = cli("predict", TAG, str(tmp_path / "cat.png"), "--json", "--amp", "off")
    assert pred.returncode == 0, pred.stderr
    top = json.loads(pred.stdout)["predictions"][0]["top"][0]
    assert top["class"] == "cat"  # CIFAR-10 test image 0 is a cat


@pytest.mark.slow
def test_fine_tuning_beats_training_from_scratch(cifar10_dir, tmp_path):
    """3 CIFAR-10 classes as 48x48 PNG folders: 2 epochs from the published weights reach a
    higher validation accuracy than the same 2 epochs from scratch."""
    train, _ = load_cifar("cifar10", cifar10_dir, download_ok=False, progress=False)
    root = tmp_path / "photos"
    for cls in (3, 5, 8):  # cat, dog, ship
        folder = root / "train" / train.classes[cls]
        folder.mkdir(parents=True)
        for i in (train.labels == cls).nonzero().flatten()[:100].tolist():
            img = Image.fromarray(train.images[i].permute(1, 2, 0).numpy()).resize((48, 48))
            img.save(folder / f"{i}.png")
    common = ["train", "--dataset", "folder", "--data-dir", str(root), "--model", "attention56",
              "--input-size", "48", "--val-size", "90", "--epochs", "2", "--batch-size", "30",
              "--lr", "0.02", "--schedule", "cosine", "--workers", "0", "--no-progress",
              "--seed", "1", "--amp", "off"]
    scores = {}
    for name, extra in (("scratch", []), ("finetuned", ["--init", TAG, "--body-lr-scale",
                                                        "0.5"])):
        out = tmp_path / name
        proc = cli(*common, *extra, "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        (run,) = out.iterdir()
        scores[name] = json.loads((run / "summary.json").read_text())["val_acc"]
    print("fine-tuning", scores)
    assert scores["finetuned"] > scores["scratch"] + 0.1, scores


def test_fine_tuning_says_what_it_loaded_replaced_and_froze(small_run, tmp_path):
    """--init a 10-class run on a 3-class folder: one line names the weights, the head that was
    replaced and the frozen body; the loaded body equals the source's."""
    rng = np.random.default_rng(2)
    for name in ("a", "b", "c"):
        (tmp_path / "pics" / "train" / name).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "pics" / "train" / name / f"{i}.png")
    proc = cli("train", "--dataset", "folder", "--data-dir", str(tmp_path / "pics"), "--model",
               "attention_test", "--init", str(small_run), "--freeze-body", "--val-size", "3",
               "--batch-size", "5", "--iterations", "1", "--lr", "1e-9", "--workers", "0",
               "--no-progress", "--amp", "off", "--no-ema", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("fine-tuning:"))
    assert line.startswith(f"fine-tuning: loaded {small_run} (") and "10 classes)" in line
    assert line.endswith("; replaced its 10-class head with a new 3-class one (random init); "
                         "the body is frozen: only the classifier trains"), line
    (run,) = (tmp_path / "r").iterdir()
    tuned = torch.load(run / "last.pt", weights_only=True)["model"]
    source = torch.load(small_run / "last.pt", weights_only=True)["model"]
    # the body's parameters are the source's, untouched by the step (BatchNorm's running
    # statistics, buffers, follow the new images)
    body = [k for k in source if not k.startswith("fc.") and k.endswith(("weight", "bias"))]
    assert body and all(torch.equal(tuned[k], source[k]) for k in body)
    assert tuned["fc.weight"].shape[0] == 3


def test_init_with_another_architecture_is_refused(tmp_path):
    proc = cli("train", "--model", "attention92", "--init", TAG, "--out", str(tmp_path / "r"))
    assert_user_error(proc, "holds weights of another architecture (model='attention56'")
    assert not (tmp_path / "r").exists()
    assert_user_error(cli("train", "--freeze-body"), "--freeze-body True is not valid; it needs")


@pytest.mark.parametrize("edit,message", [
    ({"classes": "ab"}, "config.json's classes must be a list of class names"),
    ({"classes": ["a", "b"]}, "config.json names 2 classes but the weights have 10 outputs"),
    ({"input_size": "abc"}, "config.json's input_size 'abc' must be an integer >= 1"),
    ({"input_size": 0}, "config.json's input_size 0 must be an integer >= 1"),
    ({"crop_pct": 0}, "config.json's crop_pct 0 must be in (0, 1]"),
    ({"std": [0.0, 0.0, 0.0]}, "config.json's mean and std must be finite, and std > 0"),
    ({"int32": True}, "tensor stem.0.weight is torch.int32, not floating point"),
    ({"nan": True}, "tensor stem.0.weight holds NaN or infinite values"),
    # same tensors, other numbers: the export's config_sha256 catches these
    ({"config": {"attention": "spatial"}}, "config.json was edited after export: the model"),
    ({"config": {"upsample_align_corners": True}}, "config.json was edited after export"),
    ({"shift_mean": True}, "no longer matches its config_sha256; export the weights again"),
])
def test_an_edited_weights_folder_is_refused_in_one_line(small_run, tmp_path, edit, message):
    """A weights folder whose config.json was edited by hand (or whose tensors were rewritten
    with a fresh SHA-256): refused by what it breaks, not loaded into NaN or a traceback."""
    from resattn.api import save_pretrained
    from resattn.weights import write_weights
    from resattn.weights.safetensors import load_file

    folder = save_pretrained(str(small_run), tmp_path / "w")
    meta = json.loads((folder / "config.json").read_text())
    state, _ = load_file(folder / "model.safetensors")
    if edit.pop("int32", False):
        state["stem.0.weight"] = state["stem.0.weight"].to(torch.int32)
    if edit.pop("nan", False):
        state["stem.0.weight"][0] = float("nan")
    if edit.pop("shift_mean", False):
        meta["mean"] = [v + 0.01 for v in meta["mean"]]
    meta.update({k: {**meta[k], **v} if k == "config" else v for k, v in edit.items()})
    meta.pop("sha256")
    if "int32" in message:  # write_weights stores floats as fp32: write this file directly
        from resattn.weights.safetensors import save_file

        save_file(state, folder / "model.safetensors", {"format": "pt"})
        (folder / "config.json").write_text(json.dumps(
            {**meta, "sha256": sha256_of(folder / "model.safetensors")}))
    else:
        write_weights(state, folder, meta)
    with pytest.raises(UserError, match=re.escape(message)):
        resattn.load_model(folder)
    assert_user_error(cli("predict", str(folder), "nothing.png"), message)


def test_a_weights_folder_without_a_description_hash_or_with_new_metrics_still_loads(
        small_run, tmp_path):
    """config_sha256 covers what decides the predictions, nothing else: edited metrics load,
    and a folder exported before the hash existed (none in config.json) loads as before."""
    from resattn.api import save_pretrained

    folder = save_pretrained(str(small_run), tmp_path / "w")
    meta = json.loads((folder / "config.json").read_text())
    assert len(meta["config_sha256"]) == 64
    meta["metrics"] = {"test_acc": 0.99}
    (folder / "config.json").write_text(json.dumps(meta))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = resattn.load_model(small_run)(x)
        torch.testing.assert_close(resattn.load_model(folder)(x), expected)
        del meta["config_sha256"]
        (folder / "config.json").write_text(json.dumps(meta))
        torch.testing.assert_close(resattn.load_model(folder)(x), expected)


def test_init_weights_are_read_and_hashed_once(small_run, synthetic_cifar10, tmp_path,
                                               monkeypatch):
    """--init is checked before any data is read and loaded after seeding, from one read of
    the file (a weights folder is hashed whole: twice was a second pass over it)."""
    from resattn.api import training

    reads = []
    real = training.load_source
    monkeypatch.setattr(training, "load_source",
                        lambda source: reads.append(source) or real(source))
    summary, _ = resattn.train(model="attention_test", data_dir=str(synthetic_cifar10),
                               init=str(small_run), train_subset=32, val_size=100,
                               test_subset=100, batch_size=16, iterations=1,
                               out=str(tmp_path), progress=False)
    assert reads == [str(small_run)] and summary["steps"] == 1


@pytest.mark.parametrize("which", ["raw", "ema"])
def test_pretrained_cfg_weights_says_which_of_the_runs_weights_a_folder_holds(small_run, tmp_path,
                                                                             which):
    """`pretrained_cfg["weights"]` means one thing wherever the model comes from: which of the
    run's weights (raw or EMA) the tensors are. A folder exported from the EMA weights says
    "ema" when loaded back, and exports again as such; the source is where they came from."""
    from resattn.engine.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(small_run / "last.pt")
    ckpt["ema"] = {"module": {k: v + 1 if v.is_floating_point() else v
                              for k, v in ckpt["model"].items()}, "updates": 1}
    save_checkpoint(ckpt, tmp_path / "with_ema.pt")
    folder = resattn.export(str(tmp_path / "with_ema.pt"), tmp_path / "w", "safetensors",
                            weights=which)["path"]
    model = resattn.load_model(folder)
    assert model.pretrained_cfg["weights"] == which
    assert model.pretrained_cfg["source"] == str(folder)
    direct = resattn.load_model(tmp_path / "with_ema.pt", weights=which)
    assert_same_state(model.state_dict(), direct.state_dict())
    again = resattn.export(model, tmp_path / "again", "safetensors")["path"]
    assert resattn.load_model(again).pretrained_cfg["weights"] == which
