"""GPU benchmark: correctness of every CUDA path, throughput against the compute floor, and time to
accuracy on the real CIFAR-10. Each phase writes JSON and logs under --out; `summary` prints them.

    python benchmarks/gpu.py correctness --out OUT            # ~1 min: the CUDA paths work
    python benchmarks/gpu.py throughput --out OUT             # ~2 min: resattn bench, 3 models
    python benchmarks/gpu.py accuracy --data-dir DIR --out OUT --budget 170   # time to accuracy
    bash benchmarks/gpu.sh DATA_DIR OUT                       # all three, in that order

Runs from a checkout (PYTHONPATH=src) or an installed resattn. `--device cpu` with tiny sizes is
how this script is tested without a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "resattn"]
THROUGHPUT_MODELS = ("attention56", "attention92", "attention92_wide")
# the fast recipe tuned for one large GPU: 4x the batch, the usual linear-in-batch lr, all 50k
# training images (the paper's protocol; test accuracy is monitored off the clock)
GPU_RECIPE = ["--recipe", "fast", "--batch-size", "512", "--lr", "0.4", "--val-size", "0",
              "--eval-batch-size", "1000", "--monitor-test", "--no-progress"]


def log(msg: str) -> None:
    print(f"[gpu.py {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(args: list[str], out: Path, name: str, timeout: float = 600,
       check: bool = True) -> subprocess.CompletedProcess:
    """Run a resattn command, keep its output in OUT/<name>.log."""
    t = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    log(f"{name}: exit {proc.returncode} in {time.perf_counter() - t:.1f}s")
    if check and proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc


def environment() -> dict:
    import torch

    env = {"torch": torch.__version__, "python": platform.python_version(),
           "cuda_available": torch.cuda.is_available(), "date": time.strftime("%Y-%m-%d")}
    if torch.cuda.is_available():
        env.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
        try:
            env["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            env["driver"] = None
    return env


# ------------------------------------------------------------------------------- correctness
def make_folder(root: Path, per_class: int = 24, size: int = 32) -> Path:
    """A small image-folder dataset (train/ and test/, 4 classes told apart by colour)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (200, 200, 40)]
    for split, n in (("train", per_class), ("test", per_class // 2)):
        for c, colour in enumerate(colours):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 90, (size, size, 3)) + np.array(colour) * 0.6
                Image.fromarray(img.clip(0, 255).astype("uint8")).save(d / f"{i}.png")
    return root


def check_device_loader(device: str) -> dict:
    """The device-resident CIFAR path: the same (seed, epoch) gives the same batches on the
    device, every image once per epoch, augmentation on the device."""
    import torch

    from resattn.data import AugmentConfig, BatchTransform, DeviceLoader
    from resattn.data.dataset import ImageSet

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(1000) % 10
    data = ImageSet(images, labels, [str(i) for i in range(10)]).to(device)
    cfg = AugmentConfig(crop_padding=4, crop_mode="reflect", flip=True, cutout=8,
                        normalization="channel")
    transform = BatchTransform(cfg, torch.zeros(3, 1, 1), torch.ones(3, 1, 1), 10)
    loader = DeviceLoader(data, 128, transform, train=True, seed=5)
    loader.set_epoch(3)
    first = [(x.clone(), y.clone()) for x, y in loader]
    again = [(x, y) for x, y in loader]
    same = all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    on_device = all(x.device.type == torch.device(device).type for x, _ in first)
    seen = torch.cat([y for _, y in first]).bincount(minlength=10).tolist()
    ok = same and on_device and len(first) == 1000 // 128 and sum(seen) == 128 * 7
    return {"device_loader_ok": ok, "same_batches_for_same_epoch": same, "on_device": on_device}


def correctness(args: argparse.Namespace) -> int:
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    results = {"environment": environment()}
    results["device_loader"] = check_device_loader(args.device)
    log(f"device loader: {results['device_loader']}")
    data = make_folder(out.parent / "gpu-folder-data" if args.keep else Path("/tmp/gpu-folder"))
    common = ["--dataset", "folder", "--data-dir", str(data), "--model", args.model,
              "--device", args.device, "--batch-size", "16", "--no-progress", "--seed", "1",
              "--lr", "0.05", "--schedule", "cosine", "--workers", "2", "--val-size", "16"]
    runs = out / "runs"
    # 1. a few steps with bf16 autocast, channels-last and torch.compile
    compiled = ["--compile"] if args.compile else []
    sh([*CLI, "train", *common, "--epochs", "2", "--amp", "bf16", "--channels-last",
        *compiled, "--out", str(runs / "compiled")], out, "train-compile")
    run = next((runs / "compiled").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    results["train_compile"] = {k: summary[k] for k in ("amp", "device", "steps", "test_acc",
                                                        "train_loss", "train_time_s")}
    # 2. evaluate and predict from the checkpoint alone, on the device
    ev = sh([*CLI, "evaluate", str(run / "last.pt"), "--data-dir", str(data), "--device",
             args.device, "--json"], out, "evaluate")
    evaluated = json.loads(ev.stdout)
    results["evaluate"] = {"top1": evaluated["top1"], "images": evaluated["images"],
                           "agrees_with_run": abs(evaluated["top1"] - summary["test_acc"]) < 0.05}
    pics = sorted((data / "test" / "class2").glob("*.png"))[:4]
    pr = sh([*CLI, "predict", str(run / "last.pt"), *map(str, pics), "--device", args.device,
             "--json"], out, "predict")
    predicted = json.loads(pr.stdout)
    results["predict"] = {"files": len(predicted.get("predictions", predicted)),
                          "ok": pr.returncode == 0}
    # 3. SIGKILL after the first epoch, then --resume finishes the run
    resume_out = runs / "killed"
    proc = subprocess.Popen([*CLI, "train", *common, "--epochs", "3", "--out", str(resume_out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    start = time.time()
    while time.time() - start < 300:
        done = list(resume_out.glob("*/metrics.jsonl"))
        if done and done[0].read_text().count("\n") >= 1:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = next(resume_out.iterdir())
    sh([*CLI, "train", "--resume", str(killed), "--device", args.device, "--no-progress"], out,
       "resume")
    rows = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    results["resume"] = {"epochs_logged": [r["epoch"] for r in rows],
                         "ok": [r["epoch"] for r in rows] == [1, 2, 3]}
    ok = (results["device_loader"]["device_loader_ok"] and results["evaluate"]["agrees_with_run"]
          and results["predict"]["ok"] and results["resume"]["ok"]
          and summary["amp"] == "bf16")
    results["all_ok"] = ok
    (out / "correctness.json").write_text(json.dumps(results, indent=2) + "\n")
    log(f"correctness: {'OK' if ok else 'FAILED'}: {json.dumps(results)}")
    return 0 if ok else 1


# -------------------------------------------------------------------------------- throughput
def throughput(args: argparse.Namespace) -> int:
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    docs = []
    for model in args.models:
        variants = ["fp32", "bf16+cl"]
        proc = sh([*CLI, "bench", model, "--device", args.device, "--batch-size",
                   *map(str, args.batch_sizes), "--inference-batch-size",
                   *map(str, args.batch_sizes), "--variants", *variants, "--seconds",
                   str(args.seconds), "--json"], out, f"bench-{model}", check=False)
        if proc.returncode == 0:
            docs.append(json.loads(proc.stdout))
    for model, mode in args.compiled:  # compilation costs a minute each: chosen ones only
        batch = str(max(args.batch_sizes))
        proc = sh([*CLI, "bench", model, "--device", args.device, "--batch-size", batch,
                   "--inference-batch-size", batch, "--modes", mode, "--variants",
                   "bf16+cl+compile", "--seconds", str(args.seconds), "--json"], out,
                  f"bench-{model}-{mode}-compile", check=False)
        if proc.returncode == 0:
            docs.append(json.loads(proc.stdout))
    (out / "throughput.json").write_text(json.dumps({"environment": environment(),
                                                     "benches": docs}, indent=2) + "\n")
    print_throughput(docs)
    return 0


def print_throughput(docs: list[dict]) -> None:
    print("| model | mode | batch | variant | img/s | peak MB | first step s | floor img/s "
          "| of floor |")
    print("|---|---|---|---|---|---|---|---|---|")
    for doc in docs:
        for r in doc["results"]:
            if "error" in r:
                print(f"| {doc['model']} | {r['mode']} | {r['batch_size']} | {r['variant']} | "
                      f"failed: {r['error'][:80]} |")
                continue
            floor = r.get("floor_images_per_s")
            print(f"| {doc['model']} | {r['mode']} | {r['batch_size']} | {r['variant']} | "
                  f"{r['images_per_s']:.0f} | {r['peak_memory_mb']:.0f} | "
                  f"{r['first_step_s']:.1f} | {floor or 0:.0f} | "
                  f"{r.get('fraction_of_floor', 0):.1%} |")


# ------------------------------------------------------------------------- time to accuracy
def planned_epochs(model: str, budget: float, throughput_json: Path | None,
                   train_images: int = 50000) -> tuple[int, bool]:
    """Epochs that fit the budget at the measured batch-512 speed, and whether torch.compile
    (its first-step cost included) trains more images in the budget than eager bf16."""
    default = (40, False)
    if throughput_json is None or not throughput_json.is_file():
        return default
    docs = json.loads(throughput_json.read_text())["benches"]
    rows = [r for d in docs if d["model"] == model for r in d["results"]
            if r["mode"] == "train" and r["batch_size"] == 512 and "error" not in r]
    eager = next((r for r in rows if r["variant"] == "bf16+cl"), None)
    comp = next((r for r in rows if r["variant"] == "bf16+cl+compile"), None)
    if eager is None:
        return default
    eager_images = eager["images_per_s"] * budget
    comp_images = comp["images_per_s"] * max(budget - comp["first_step_s"], 0) if comp else 0
    use_compile = comp_images > 1.1 * eager_images
    images = max(eager_images, comp_images)
    return max(1, int(0.9 * images / train_images)), use_compile


def publish(run: Path, model: str, dest: Path, report: Path) -> None:
    """Copy what a weights release needs into `dest`: the chosen weights with the checkpoint's
    metadata (no optimizer state: small enough to travel), the metrics and the report."""
    import shutil

    import torch

    from resattn.engine.checkpoint import save_checkpoint

    dest.mkdir(parents=True, exist_ok=True)
    ckpt = torch.load(run / "last.pt", weights_only=True)
    chosen = ckpt.get("eval_weights", "raw")
    state = ckpt["ema"]["module"] if chosen == "ema" else ckpt["model"]
    keep = ("config", "classes", "mean", "std", "input_size", "crop_pct", "model_info", "epoch",
            "step", "train_time_s")
    save_checkpoint({"model": state, "eval_weights": "raw", "weights_source": chosen,
                **{k: ckpt[k] for k in keep if k in ckpt}},
                    dest / f"{model}.weights.pt")
    shutil.copy(run / "metrics.jsonl", dest / f"{model}.metrics.jsonl")
    shutil.copy(report, dest / "accuracy.json")


def accuracy(args: argparse.Namespace) -> int:
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    report = {"environment": environment(), "runs": []}
    for model, budget in zip(args.models, args.budgets):
        epochs, use_compile = planned_epochs(model, budget, args.throughput_json)
        if args.epochs:
            epochs = args.epochs
        cmd = [*CLI, "train", "--model", model, *GPU_RECIPE, "--epochs", str(epochs),
               "--time-budget", str(budget), "--data-dir", str(args.data_dir), "--device",
               args.device, "--out", str(out / "runs"), "--warmup", str(args.warmup)]
        cmd += ["--compile"] if use_compile else []
        cmd += args.extra
        log(f"{model}: {' '.join(cmd[3:])}")
        t = time.perf_counter()
        sh(cmd, out, f"train-{model}", timeout=budget + 600)
        wall = time.perf_counter() - t
        run = max((out / "runs").glob(f"*_{model}_cifar10"), key=os.path.getmtime)
        summary = json.loads((run / "summary.json").read_text())
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        curve = [{"epoch": r["epoch"], "elapsed_s": round(r["elapsed_s"], 1),
                  "test_acc": r.get("test_acc"), "ema_test_acc": r.get("ema_test_acc"),
                  "images_per_s": round(r["images_per_s"])} for r in rows]
        best = [max(r.get("test_acc") or 0, r.get("ema_test_acc") or 0) for r in rows]
        first = {str(t): next((c["elapsed_s"] for c, b in zip(curve, best) if b >= t), None)
                 for t in (0.90, 0.93, 0.94, 0.95)}
        entry = {"model": model, "budget_s": budget, "epochs_planned": epochs,
                 "compile": use_compile, "command": " ".join(["resattn", *cmd[3:]]),
                 "run_dir": run.name, "wall_s": round(wall, 1),
                 "final": {k: summary.get(k) for k in ("epochs", "steps", "train_time_s",
                                                       "test_acc", "test_top5", "test_loss",
                                                       "eval_weights", "tta", "amp")},
                 "first_reached_s": first, "curve": curve}
        report["runs"].append(entry)
        (out / "accuracy.json").write_text(json.dumps(report, indent=2) + "\n")
        # the published figures: the final weights on all 10,000 test images, with and
        # without flip TTA, from the checkpoint alone
        for tta in ([], ["--tta"]):
            ev = sh([*CLI, "evaluate", str(run / "last.pt"), "--data-dir", str(args.data_dir),
                     "--device", args.device, "--json", *tta], out,
                    f"evaluate-{model}{'-tta' if tta else ''}", check=False)
            if ev.returncode == 0:
                got = json.loads(ev.stdout)
                entry["evaluate" + ("_tta" if tta else "")] = {
                    k: got[k] for k in ("top1", "top5", "loss", "images")}
        (out / "accuracy.json").write_text(json.dumps(report, indent=2) + "\n")
        if args.publish:
            publish(run, model, args.publish, out / "accuracy.json")
        log(f"{model}: final {entry['final']}, first reached {first}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="phase", required=True)
    for name in ("correctness", "throughput", "accuracy"):
        p = sub.add_parser(name)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--device", default="cuda")
        p.add_argument("--keep", action="store_true", help="keep the generated data under OUT")
        if name == "correctness":
            p.add_argument("--model", default="attention56")
            p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                           help="train with --compile (the whole step as one graph on CUDA)")
        if name == "throughput":
            p.add_argument("--models", nargs="+", default=list(THROUGHPUT_MODELS))
            p.add_argument("--batch-sizes", type=int, nargs="+", default=[512, 1024])
            p.add_argument("--seconds", type=float, default=2.0)
            p.add_argument("--compiled", nargs="*", default=["attention56:train",
                                                            "attention92:train",
                                                            "attention56:inference"],
                           type=lambda s: tuple(s.split(":")),
                           help="MODEL:MODE pairs also measured under torch.compile")
        if name == "accuracy":
            p.add_argument("--data-dir", type=Path, required=True)
            p.add_argument("--models", nargs="+", default=["attention56"])
            p.add_argument("--budgets", type=float, nargs="+", default=[170.0])
            p.add_argument("--epochs", type=int, default=0, help="0: planned from throughput")
            p.add_argument("--warmup", type=float, default=2.0)
            p.add_argument("--throughput-json", type=Path, default=None)
            p.add_argument("--publish", type=Path, default=None,
                           help="copy each run's chosen weights, metrics and the report here")
            p.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                           help="more flags for resattn train (last)")
    args = ap.parse_args()
    log(f"phase {args.phase}, device {args.device}")
    return {"correctness": correctness, "throughput": throughput,
            "accuracy": accuracy}[args.phase](args)


if __name__ == "__main__":
    sys.exit(main())
