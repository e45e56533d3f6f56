"""Bar chart of an experiment suite: our test error next to the paper's."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def suite_chart(rows: list[dict], title: str) -> Figure:
    names = [r["name"] for r in rows]
    ours = [r["test_error"][0] if r.get("test_error") else np.nan for r in rows]
    spread = [r["test_error"][1] if r.get("test_error") else 0 for r in rows]
    ref = [np.nan if r["reference"] is None else r["reference"] for r in rows]
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(6, 1.2 * len(rows) + 2), 4.2), dpi=100)
    ax = fig.subplots()
    ax.bar(x - 0.2, ref, 0.4, label="reference (paper / seed)", color="tab:gray")
    ax.bar(x + 0.2, ours, 0.4, yerr=spread, label="resattn", color="tab:blue", capsize=3)
    for xi, v in zip(x, ours):
        if not np.isnan(v):
            ax.text(xi + 0.2, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set(ylabel="test error (%)", title=title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
