"""After `make run`: the newest run's curves and the attention masks of a few test images.

    python examples/after_training.py RUNS_DIR

Draws RUN/curves.png (`resattn.plot`, as `resattn plot` does), writes the first four CIFAR-10
test images as PNG files into RUN/masks/inputs/<class>/ and their mask pictures into RUN/masks/
(`resattn.api.Explainer`, as `resattn visualize` does), and prints where everything is. All in
this one process, through the Python API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else "runs")
    finished = [d for d in runs.glob("*") if (d / "summary.json").is_file()]
    if not finished:
        print(f"error: no finished run in {runs}", file=sys.stderr)
        return 2
    run = max(finished, key=lambda d: (d / "summary.json").stat().st_mtime)
    summary = json.loads((run / "summary.json").read_text())

    from PIL import Image

    import resattn
    from resattn.api import Explainer
    from resattn.data import load_cifar_splits

    print(resattn.plot(run), flush=True)
    model = resattn.load_model(run)  # raw or EMA weights, as validation chose
    config = model.pretrained_cfg["config"]
    explainer = Explainer(model, topk=1)
    (test,) = load_cifar_splits(config["dataset"], ("test",), config["data_dir"], progress=False)
    for i in range(4):
        image = Image.fromarray(test.images[i].permute(1, 2, 0).numpy())
        truth = test.classes[int(test.labels[i])]
        path = run / "masks" / "inputs" / truth / f"test{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        explanation = explainer(image)
        name, prob = explanation.top[0]
        print(explanation.save(run / "masks" / f"test{i:04d}_masks.png",
                               title=f"{path.name}: predicted {name} ({prob:.1%}), true {truth}"),
              flush=True)
    print(f"\ntest accuracy {summary['test_acc']:.2%} after {summary['train_time_s']:.0f} s "
          f"of training ({summary['epochs']:.2f} epochs)")
    print(f"run directory:   {run}")
    print(f"curves:          {run / 'curves.png'}")
    print(f"attention masks: {run / 'masks'} (one picture per test image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
