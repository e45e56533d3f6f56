"""The deletion and insertion curves of `resattn explain`: one panel each, the mean curve of
every saliency method with its 95% band, on fixed axes (fraction of pixels 0-1, probability
0-1) so that pictures of different models compare."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

# random order is the reference: grey and dashed, the masks in the warm colours
STYLE = {"random": ("grey", "--")}
PALETTE = ["tab:red", "tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:blue",
           "tab:green", "tab:purple", "tab:cyan"]


def curves_figure(curves: dict[str, dict[str, np.ndarray]], title: str) -> Figure:
    """`curves`: {"deletion" | "insertion": {method: (N, steps + 1) probabilities}}."""
    fig = Figure(figsize=(10, 4.2), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (kind, by_method) in zip(axes, curves.items()):
        colours = iter(PALETTE)
        for method, values in by_method.items():
            colour, line = STYLE.get(method, (next(colours), "-"))
            x = np.linspace(0, 1, values.shape[1])
            mean = values.mean(0)
            # the band: 95% interval of the mean curve (normal approximation, per point)
            half = 1.96 * values.std(0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 \
                else np.zeros_like(mean)
            auc = float((mean[:-1] + mean[1:]).sum() / 2 / (len(mean) - 1))  # trapezoids
            ax.plot(x, mean, line, color=colour, label=f"{method} (AUC {auc:.3f})")
            ax.fill_between(x, mean - half, mean + half, color=colour, alpha=0.2, linewidth=0)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        better = "lower" if kind == "deletion" else "higher"
        ax.set_title(f"{kind} ({better} AUC = more faithful)", fontsize=10)
        ax.set_xlabel(f"fraction of pixels {'removed' if kind == 'deletion' else 'inserted'}, "
                      "most salient first")
        ax.set_ylabel("probability of the predicted class")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig
