"""After `make run`: the newest run's curves and the attention masks of a few test images.

    python examples/after_training.py RUNS_DIR

Draws RUN/curves.png (`resattn plot`), writes the first four CIFAR-10 test images as PNG files
and their mask overlays into RUN/masks/ (`resattn visualize`), and prints where everything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def resattn(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "resattn", *args], check=True)


def main() -> int:
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else "runs")
    finished = [d for d in runs.glob("*") if (d / "summary.json").is_file()]
    if not finished:
        print(f"error: no finished run in {runs}", file=sys.stderr)
        return 2
    run = max(finished, key=lambda d: (d / "summary.json").stat().st_mtime)
    summary = json.loads((run / "summary.json").read_text())
    resattn("plot", str(run), "--out", str(run / "curves.png"))

    import torch
    from PIL import Image

    from resattn.data import load_cifar

    config = torch.load(run / "last.pt", weights_only=True, map_location="cpu")["config"]
    _, test = load_cifar(config["dataset"], config["data_dir"])
    images = run / "masks" / "inputs"
    images.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(4):  # in class folders, so that each picture names the true class
        path = images / test.classes[int(test.labels[i])] / f"test{i:04d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(test.images[i].permute(1, 2, 0).numpy()).save(path)
        paths.append(str(path))
    resattn("visualize", str(run), *paths, "--out", str(run / "masks"))
    print(f"\ntest accuracy {summary['test_acc']:.2%} after {summary['train_time_s']:.0f} s "
          f"of training ({summary['epochs']:.2f} epochs)")
    print(f"run directory:   {run}")
    print(f"curves:          {run / 'curves.png'}")
    print(f"attention masks: {run / 'masks'} (one picture per test image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
