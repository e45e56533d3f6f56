"""Latency of one explorer answer (`resattn serve`): preprocessing, the forward pass with every
attention module's mask, and the pictures of all modules and of the selected one, for one image.
Target: under 1 s for attention56 on a 2-core CPU. Median of 20 after 3 warm-up calls.

    python benchmarks/serve_latency.py [MODEL] [--image PATH]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image

from resattn.api.explain import Explainer
from resattn.provenance import device_name
from resattn.serve import MEAN, module_pictures, selected_picture


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="attention56.cifar10")
    ap.add_argument("--image", default=None, help="default: a random 500x375 photo-sized image")
    args = ap.parse_args()
    explainer = Explainer(args.model)
    image = Image.open(args.image) if args.image else Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (375, 500, 3), dtype=np.uint8))

    def answer() -> None:
        exp = explainer(image)
        module_pictures(exp)
        selected_picture(exp, explainer.modules[0], MEAN)

    for _ in range(3):
        answer()
    times = []
    for _ in range(20):
        start = time.perf_counter()
        answer()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"{args.model}: {1000 * median:.0f} ms per answer (median of 20; "
          f"{len(explainer.modules)} modules), {device_name(torch.device('cpu'))}, "
          f"torch {torch.__version__}")
    print(f"{'PASS' if median < 1.0 else 'FAIL'}: target < 1 s")


if __name__ == "__main__":
    main()
