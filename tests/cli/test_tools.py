"""predict, visualize, plot, evaluate --confusion, export, bench: end to end on CPU, on the
synthetic CIFAR-10 and the run trained on it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_user_error, cli
from PIL import Image
from synthetic_data import held_out_images

import resattn
from resattn.cli import main
from resattn.data import load_cifar
from resattn.models.stats import model_stats
from resattn.provenance import cpu_model_and_flags
from resattn.runtime import cpu_has_native_bf16


def png_bomb(path: Path, side: int = 30000) -> Path:
    """A valid PNG header declaring side x side pixels, with no pixel data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def test_pngs(_synthetic_cifar10, tmp_path_factory) -> Path:
    """The first 4 test images of the synthetic CIFAR-10 as PNG files."""
    folder = tmp_path_factory.mktemp("pngs")
    for i, image in enumerate(held_out_images(*_synthetic_cifar10)[0][:4]):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    return folder


def test_predict_agrees_with_evaluate(small_run, synthetic_cifar10, tmp_path):
    # evaluate's predictions name their images (positions in the test batch), so the same
    # images written as PNG files can be given to predict
    preds = tmp_path / "preds.json"
    ev = cli("evaluate", str(small_run / "last.pt"), "--data-dir", str(synthetic_cifar10),
             "--amp", "off", "--save-predictions", str(preds), "--json", "--test-subset", "150")
    assert ev.returncode == 0, ev.stderr
    saved = json.loads(preds.read_text())
    assert len(saved["images"]) == len(saved["predictions"]) == 150
    _, test = load_cifar("cifar10", synthetic_cifar10)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for pos, i in enumerate(saved["images"][:40]):
        assert int(test.labels[i]) in range(10)
        Image.fromarray(test.images[i].permute(1, 2, 0).numpy()).save(folder / f"{pos:03d}.png")
    expected = saved["predictions"][:40]
    pr = cli("predict", str(small_run / "last.pt"), str(folder), "--amp", "off", "--json",
             "--topk", "3")
    assert pr.returncode == 0, pr.stderr
    doc = json.loads(pr.stdout)
    got = [p["top"][0]["index"] for p in sorted(doc["predictions"], key=lambda p: p["path"])]
    assert got == expected
    first = doc["predictions"][0]["top"]
    assert len(first) == 3 and first[0]["prob"] >= first[1]["prob"] >= first[2]["prob"]
    assert first[0]["class"] in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                 "frog", "horse", "ship", "truck")


def test_predict_every_image_kind_and_bad_files(small_run, tmp_path):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (70, 100, 3), dtype=np.uint8))
    rgb.save(tmp_path / "wide.jpg")
    rgb.convert("L").save(tmp_path / "gray.png")
    rgb.convert("P").save(tmp_path / "palette.png")
    rgb.convert("RGBA").save(tmp_path / "alpha.png")
    rgb.save(tmp_path / "x.bmp")
    rgb.save(tmp_path / "x.webp")
    rgb.save(tmp_path / "x.tiff")
    Image.fromarray((rng.integers(0, 65536, (40, 40))).astype(np.uint16)).save(
        tmp_path / "deep.png")
    (tmp_path / "notes.png").write_text("not an image")
    good = (tmp_path / "gray.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 3])
    png_bomb(tmp_path / "bomb.png")
    fifo = tmp_path / "elsewhere" / "pipe.png"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    proc = cli("predict", str(small_run), str(tmp_path), str(tmp_path / "missing.jpg"),
               str(fifo), "--json")
    assert proc.returncode == 1  # some files failed, the rest were predicted
    doc = json.loads(proc.stdout)
    names = sorted(Path(p["path"]).name for p in doc["predictions"])
    assert names == ["alpha.png", "deep.png", "gray.png", "palette.png", "wide.jpg", "x.bmp",
                     "x.tiff", "x.webp"]
    failed = {Path(f["path"]).name: f["error"] for f in doc["failed"]}
    assert set(failed) == {"notes.png", "cut.png", "bomb.png", "missing.jpg", "pipe.png"}
    assert "decompression-bomb" in failed["bomb.png"]
    assert failed["missing.jpg"] == "no such file" and failed["pipe.png"] == "not a regular file"
    assert_user_error(cli("predict", str(small_run), ""), "an empty path was given")
    assert "Traceback" not in proc.stderr
    assert all(f"skipping {tmp_path}" in line for line in proc.stderr.strip().splitlines())


def test_visualize_writes_one_png_per_image(small_run, test_pngs, tmp_path):
    folder = test_pngs
    out = tmp_path / "viz"
    proc = cli("visualize", str(small_run), str(folder / "000.png"), str(folder / "001.png"),
               "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["000_masks.png", "001_masks.png"]
    with Image.open(pngs[0]) as img:  # 4 panels of 2.2 x 2.8 in and a colour bar
        assert img.format == "PNG" and img.size == (960, 280)
        assert len(np.unique(np.asarray(img.convert("L")))) > 50  # a picture, not a blank
        fixed = np.asarray(img.convert("RGB"))
    chans = cli("visualize", str(small_run), str(folder / "002.png"), "--out", str(out),
                "--channels", "0", "5")
    assert chans.returncode == 0, chans.stderr
    with Image.open(out / "002_masks.png") as img:
        assert img.size == (1400, 520)  # input + 3 modules x 2 channels, 6 per row
    stretched = cli("visualize", str(small_run), str(folder / "000.png"), "--out",
                    str(tmp_path / "s"), "--scale", "stretch")
    assert stretched.returncode == 0, stretched.stderr
    with Image.open(tmp_path / "s" / "000_masks.png") as img:
        assert img.size == (960, 280) and not np.array_equal(np.asarray(img.convert("RGB")),
                                                             fixed)
    bad = cli("visualize", str(small_run), str(folder / "003.png"), "--out", str(out),
              "--channels", "999")
    assert_user_error(bad, "channel 999 does not exist")


def test_plot_and_confusion(small_run, synthetic_cifar10, tmp_path):
    assert main(["plot", str(small_run), "--out", str(tmp_path / "curves.png")]) == 0
    with Image.open(tmp_path / "curves.png") as img:
        assert img.size == (1300, 380)
    assert main(["plot", str(small_run), "--x", "time", "--out", str(tmp_path / "t.png")]) == 0
    with Image.open(tmp_path / "t.png") as img:
        assert img.size == (1300, 380)
    assert main(["evaluate", str(small_run), "--data-dir", str(synthetic_cifar10), "--split", "val",
                 "--confusion", str(tmp_path / "cm.png")]) == 0
    with Image.open(tmp_path / "cm.png") as img:
        assert img.format == "PNG" and img.size[0] >= 500
    proc = cli("plot", str(tmp_path / "nope"))
    assert_user_error(proc, "metrics.jsonl not found")


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_pytorch_on_data_images(small_run, synthetic_cifar10, tmp_path, fmt):
    out = tmp_path / ("model.onnx" if fmt == "onnx" else "model.pt")
    proc = cli("export", str(small_run), "--format", fmt, "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout)
    assert done["path"] == str(out) and done["precision"] == "fp32"
    assert done["max_abs_diff"] < 1e-3 and done["bytes"] == out.stat().st_size
    assert done["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (tmp_path / f"{out.name}.sha256").read_text() == f"{done['sha256']}  {out.name}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, f"{out.name}.sha256"])
    ckpt = torch.load(small_run / "last.pt", weights_only=True)
    from resattn.api import model_from_checkpoint
    from resattn.data.augment import normalize

    model, _ = model_from_checkpoint(ckpt)
    _, test = load_cifar("cifar10", synthetic_cifar10)
    x = normalize(test.images[:7], ckpt["mean"], ckpt["std"])  # batch 7: not the traced 2
    with torch.no_grad():
        reference = model(x)
    if fmt == "torchscript":
        extra = {"resattn.json": ""}
        loaded = torch.jit.load(str(out), _extra_files=extra)
        meta = json.loads(extra["resattn.json"])
        got = loaded(x)
    else:
        import onnx
        import onnxruntime as ort

        meta = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["resattn"])
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    assert (got - reference).abs().max() < 1e-4
    assert meta["classes"][3] == "cat" and meta["input_size"] == 32
    mean = torch.tensor(meta["mean"]).view(meta["mean_shape"])
    assert torch.equal(mean, ckpt["mean"])


def test_bench_runs_and_reports(capsys):
    # --no-isolate: in this process (each variant in a fresh one is the CPU default, which the
    # wheel's smoke test runs)
    assert main(["bench", "attention_test", "--batch-size", "4", "--inference-batch-size", "8",
                 "--variants", "fp32", "bf16+cl", "--seconds", "0.2", "--json",
                 "--device", "cpu", "--no-isolate"]) == 0
    doc = json.loads(capsys.readouterr().out)
    stats = model_stats("attention_test")
    assert (doc["params"], doc["flops"]) == (stats["params"], stats["flops"])
    # the figures name the CPU they ran on and whether its bf16 is native
    model, flags = cpu_model_and_flags()
    assert doc["device_name"].startswith(model) and doc["threads"] == torch.get_num_threads()
    assert doc["cpu_native_bf16"] == cpu_has_native_bf16()
    assert all(f in doc["device_name"] for f in flags)
    assert [(r["mode"], r["variant"]) for r in doc["results"]] == [
        ("train", "fp32"), ("train", "bf16+cl"), ("inference", "fp32"),
        ("inference", "bf16+cl")]
    assert all(r["images_per_s"] > 0 and r["peak_memory_mb"] > 0 for r in doc["results"])


@pytest.mark.parametrize("target,error", [
    ("killed", "the worker exited with signal 9 (SIGKILL) (out of memory?)"),
    ("exits", "the worker exited with code 3 without a result"),
])
def test_a_bench_worker_that_dies_is_a_failed_row_not_a_hang(target, error):
    import workers

    from resattn.api.benchmark import run_isolated

    row = run_isolated({"mode": "train"}, target=getattr(workers, target))
    assert row == {"mode": "train", "error": error}


def test_bench_with_every_row_failed_exits_non_zero(monkeypatch, capsys):
    from resattn.api import benchmark

    monkeypatch.setattr(benchmark, "run_isolated",
                        lambda kwargs: {**kwargs, "error": "MemoryError"})
    proc = cli("bench", "attention_test", "--variants", "fp32", "--modes", "train", "--device",
               "cpu")
    assert_user_error(proc, "every measurement failed (see above); try a smaller batch")
    assert "failed: MemoryError" in proc.stdout
    for args, message in ((["--seconds", "-1"], "--seconds -1.0 is not valid"),
                          (["--input-size", "0"], "--input-size 0 is not valid")):
        assert_user_error(cli("bench", "attention_test", *args), message)


def test_predict_int8(small_run, synthetic_cifar10, test_pngs):
    pr = cli("predict", str(small_run), str(test_pngs), "--int8", "--calibration-images", "64",
             "--topk", "10", "--data-dir", str(synthetic_cifar10), "--json")
    assert pr.returncode == 0, pr.stderr
    doc = json.loads(pr.stdout)
    assert doc["precision"] == "int8" and doc["calibration_images"] == 64
    assert doc["calibration_source"] == "cifar10 training split"
    assert len(doc["predictions"]) == 4
    assert all(abs(sum(t["prob"] for t in p["top"]) - 1) < 1e-3 for p in doc["predictions"])


@pytest.mark.slow  # a second int8 conversion (about 10 s on a CPU of 2 cores)
def test_evaluate_int8(small_run, synthetic_cifar10):
    ev = cli("evaluate", str(small_run), "--int8", "--calibration-images", "64", "--data-dir",
             str(synthetic_cifar10), "--json", "--test-subset", "100")
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["precision"] == "int8"


@pytest.mark.parametrize("args,message", [
    (["--int8", "--calibration-images", "1"],
     "--calibration-images 1 is not valid; int8 calibration needs at least 2 images"),
    (["--int8", "--device", "cuda"], "no CUDA device is available"),
])
def test_int8_bad_input_is_one_line_error(small_run, test_pngs, args, message):
    proc = cli("predict", str(small_run), str(test_pngs), *args)
    assert_user_error(proc, message)


def test_evaluate_defaults_to_the_whole_test_set(small_run, synthetic_cifar10, monkeypatch):
    """A run evaluated on a subset; evaluate reports on the whole test set unless asked. (The
    images the evaluation loop receives are counted; the model's arithmetic is left out.)"""
    import resattn.api.inference as inference

    def count_only(model, loader, *args, **kwargs):
        labels = torch.cat([labels for _, labels in loader])
        return torch.zeros(len(labels), 10), labels

    monkeypatch.setattr(inference, "log_probs", count_only)
    whole = resattn.evaluate(small_run, data_dir=str(synthetic_cifar10))
    subset = resattn.evaluate(small_run, data_dir=str(synthetic_cifar10), test_subset=30)
    assert (whole["images"], subset["images"]) == (200, 30)


@pytest.mark.slow  # another int8 conversion
def test_export_int8_torchscript(small_run, synthetic_cifar10, tmp_path):
    out = tmp_path / "int8.pt"
    proc = cli("export", str(small_run), "--format", "torchscript", "--int8",
               "--calibration-images", "32", "--data-dir", str(synthetic_cifar10), "--out",
               str(out))
    assert proc.returncode == 0, proc.stderr
    extra = {"resattn.json": ""}
    loaded = torch.jit.load(str(out), _extra_files=extra)
    meta = json.loads(extra["resattn.json"])
    assert meta["precision"] == "int8" and meta["calibration_images"] == 32
    _, test = load_cifar("cifar10", synthetic_cifar10)
    from resattn.data.augment import normalize

    ckpt = torch.load(small_run / "last.pt", weights_only=True)
    x = normalize(test.images[:70], ckpt["mean"], ckpt["std"])  # more than one 64-image slice
    with torch.inference_mode():
        assert loaded(x).shape == (70, 10)
    onnx = cli("export", str(small_run), "--format", "onnx", "--int8", "--out",
               str(tmp_path / "x.onnx"))
    assert_user_error(onnx, "int8 exports to TorchScript only")
    assert not (tmp_path / "x.onnx").exists()


def test_visualize_titles_name_the_true_class_of_a_class_folder():
    from resattn.cli.visualize import picture_title

    classes = ["cat", "dog"]
    assert picture_title(Path("train/dog/x.png"), ("cat", 0.87), classes) == \
        "x.png: predicted cat (87.0%), true dog"
    assert picture_title(Path("photos/x.png"), ("cat", 0.5), classes) == \
        "x.png: predicted cat (50.0%)"


def test_visualize_names_never_collide(tmp_path):
    from resattn.cli.visualize import output_names

    a, b, c = tmp_path / "a" / "ok.png", tmp_path / "b" / "ok.png", tmp_path / "c" / "cat.png"
    assert output_names([a, b, c]) == {a: "a_ok_masks.png", b: "b_ok_masks.png",
                                       c: "cat_masks.png"}
    x, y = tmp_path / "x" / "a" / "ok.png", tmp_path / "y" / "a" / "ok.png"
    assert output_names([x, y]) == {x: "0000_ok_masks.png", y: "0001_ok_masks.png"}


def test_file_names_with_newlines_stay_on_their_line(small_run, test_pngs, tmp_path):
    """predict and visualize print one line per image, whatever its name holds: a newline or
    tab is written as \\n or \\t (the JSON output keeps the real name)."""
    odd = tmp_path / "a\nb\tc.png"
    shutil.copy(test_pngs / "000.png", odd)
    (tmp_path / "broken\n.png").write_text("not an image")
    proc = cli("predict", str(small_run), str(odd), str(tmp_path / "broken\n.png"))
    assert proc.returncode == 1
    (line,) = proc.stdout.splitlines()
    assert line.startswith(str(tmp_path / "a\\nb\\tc.png") + ": ")
    (err,) = proc.stderr.splitlines()
    assert "skipping " + str(tmp_path / "broken\\n.png") in err
    doc = json.loads(cli("predict", str(small_run), str(odd), "--json").stdout)
    assert doc["predictions"][0]["path"] == str(odd)
    shown = cli("visualize", str(small_run), str(odd), "--out", str(tmp_path / "v"))
    assert shown.returncode == 0, shown.stderr
    (line,) = shown.stdout.splitlines()
    assert line == str(tmp_path / "v" / "a\\nb\\tc_masks.png")
    assert (tmp_path / "v" / "a\nb\tc_masks.png").is_file()
