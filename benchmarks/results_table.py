"""The README's results table, generated from the rows of docs/results.md (one source for every
figure). `python benchmarks/results_table.py` prints it; `--write` replaces the table between
the `<!-- results:begin -->` and `<!-- results:end -->` markers of README.md. A test fails when
the README's table differs from what this script makes of docs/results.md."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from resattn.files import write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# (what the README calls the row, the ids of docs/results.md it shows; several ids are seeds)
README_ROWS = [
    ("Published weights `attention56.cifar10_cpu2h_prog` (the default)", ["w-cpu2h-prog"]),
    ("Published weights `attention56.cifar10`", ["w-cpu2h"]),
    ("Published weights `attention56.cifar10_h200_170s`", ["w-h200"]),
    ("`make run`: fast recipe, 10 minutes, CPU with bf16 (seeds 0 / 1)",
     ["cpu600-bf16-16px", "cpu600-bf16-16px-s1"]),
    ("`make run`: fast recipe, 10 minutes, CPU without bf16 or AVX512 (seeds 0 / 1)",
     ["cpu600-avx2", "cpu600-avx2-s1"]),
    ("Fast recipe, batch 512, 170 s on one GPU", ["gpu170"]),
    ("The paper's Attention-56, for reference", ["paper-a56"]),
]
COLUMNS = ["", "test top-1", "with flip TTA", "budget", "epochs", "hardware", "date", "records"]


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every markdown table of `text` as a list of {header: cell} rows."""
    out, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if len(rows) > 2:
            out.append([dict(zip(rows[0], r)) for r in rows[2:]])
        rows = []
    return out


def _link(row: dict[str, str], label: str) -> str:
    """The row's records (or how-it-was-made, or source) link, relative to the README."""
    m = re.search(r"\[([^\]]*)\]\(([^)]+)\)", row.get("records") or row.get("how it was made")
                  or row.get("link") or "")
    if not m:
        return ""
    if re.match(r"[a-z]+:", m.group(2)):  # a link outside the repository keeps its own text
        return m.group(0)
    return f"[{label}](docs/{m.group(2)})"


def _cells(row: dict[str, str], devices: dict[str, str], label: str) -> dict[str, str]:
    """One results.md row in the README's columns."""
    hardware = row.get("hardware") or row.get("trained on") or ""
    name, _, precision = hardware.partition(", ")
    precision = precision or row.get("precision", "")
    return {
        "test top-1": row.get("test top-1", "") or "-",
        "with flip TTA": row.get("flip TTA") or row.get("test, flip TTA") or "-",
        "budget": row.get("budget", ""),
        "epochs": row.get("epochs") or re.sub(r"^[^(]*\((\d+) epochs\)$", r"\1",
                                            row.get("budget", "")),
        "hardware": ", ".join(p for p in (devices.get(name, name), precision) if p),
        "date": row.get("date", ""),
        "records": _link(row, label),
    }


def render(results_text: str) -> str:
    """The README's table: one row per entry of README_ROWS, seeds joined by ' / '."""
    found = tables(results_text)
    by_id = {row["id"]: row for table in found for row in table if "id" in row}
    devices = {row["name"]: row["device"] for table in found for row in table
               if "device" in row and "name" in row}
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for label, ids in README_ROWS:
        rows = [by_id[i] for i in ids]
        cells = [_cells(row, devices, f"seed {row['seed']}" if len(ids) > 1 else "records")
                 for row in rows]
        merged = {col: " / ".join(dict.fromkeys(c[col] for c in cells)) for col in COLUMNS[1:]}
        lines.append("| " + " | ".join([label, *(merged[c] for c in COLUMNS[1:])]) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args()
    table = render(RESULTS.read_text())
    if not args.write:
        print(table)
        return 0
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        print(f"error: README.md has no {BEGIN} ... {END} markers", file=sys.stderr)
        return 2
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    write_text(README, f"{head}{BEGIN}\n{table}\n{END}{tail}")
    print(f"wrote the results table into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
