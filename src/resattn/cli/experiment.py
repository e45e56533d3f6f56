"""`resattn experiment SUITE`: regenerate a table of the paper (or the seed) with our numbers
beside it. Every run is an ordinary run directory; an interrupted suite continues where it
stopped and reuses finished runs (also those of other suites with the same configuration)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..api import train_config
from ..config import suite_value
from ..engine.checkpoint import load_checkpoint
from ..engine.provenance import environment
from ..engine.trainer import Interrupted
from ..errors import UserError
from ..experiment import aggregate, load_suite, parse_budget, plan, results_markdown, suite_names
from ..files import write_text
from ..runtime import resolve_device
from .common import add_device_arg

MAX_SEEDS = 1000  # seeds per run of a suite: far beyond any table, and a listing that fits


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="Run a suite of training runs and write results.md (our "
                                   "numbers next to the paper's) and a bar chart.")
    p.add_argument("suite", help=f"shipped: {', '.join(suite_names())}; or a .toml file")
    p.add_argument("--budget", default=None, metavar="seconds:N|epochs:N",
                   help="scale every run: a time budget or a number of epochs")
    p.add_argument("--recipe", default="fast", help="recipe of every run (default fast)")
    p.add_argument("--seeds", type=int, default=1,
                   help="seeds per run, 0, 1, ... (or from --set seed=N on): mean and spread; "
                        "every seed validates on the same held-out images (split_seed)")
    p.add_argument("--out", default="runs/experiments",
                   help="where the suite's runs and results go (default: %(default)s)")
    add_device_arg(p, default=None)
    p.add_argument("--data-dir", default=None,
                   help="where the dataset is (default: $RESATTN_DATA_DIR, else "
                        "~/.cache/resattn)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any configuration key for every run, e.g. --set train_subset=5000")
    p.add_argument("--only", nargs="+", default=None, metavar="RUN",
                   help="run only these runs of the suite (names as in --dry-run)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their status")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (log lines only)")
    p.set_defaults(command=name)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UserError(f"--seeds {args.seeds} is not valid; it must be in [1, {MAX_SEEDS}]")
    suite = load_suite(args.suite)
    if args.only:
        unknown = sorted(set(args.only) - {r["name"] for r in suite.runs})
        if unknown:
            raise UserError(f"--only: suite {suite.name} has no run {unknown[0]!r}; its runs: "
                            f"{', '.join(r['name'] for r in suite.runs)}")
        suite.runs = [r for r in suite.runs if r["name"] in args.only]
    extra = dict(suite_value(item) for item in args.set)
    for key, value in (("device", args.device), ("data_dir", args.data_dir)):
        if value is not None:
            extra[key] = value
    budget = parse_budget(args.budget)
    out = Path(args.out)
    planned = plan(suite, out, args.recipe, budget, args.seeds, extra)
    if args.dry_run:
        for p in planned:
            print(f"{p.status():>7}  {p.suite_run} (seed {p.seed})  {p.run_dir}")
        return 0
    start = time.time()
    for i, p in enumerate(planned, 1):
        status = p.status()
        print(f"[{i}/{len(planned)}] {p.suite_run} seed {p.seed}: {status} ({p.run_dir})",
              flush=True)
        if status == "done":
            continue
        resume = load_checkpoint(p.run_dir / "last.pt") if status == "partial" else None
        try:
            train_config(p.cfg, p.run_dir, resume, progress=not args.no_progress)
        except Interrupted as exc:
            print(f"{exc}; rerun the same command to continue the suite")
            return 130
    device = resolve_device(planned[0].cfg.device)
    rows = aggregate(suite, planned)
    trained = sum(r.get("train_time_s", 0) * r["seeds"] for r in rows)
    env = environment(device)
    header = {"recipe": args.recipe, "budget per run": args.budget or "the recipe's own",
              "seeds": str(args.seeds), "hardware": env["device_name"],  # CPU names carry threads
              "software": f"resattn {env['resattn']}, torch {env['torch']}, "
                          f"Python {env['python']}",
              "date": time.strftime("%Y-%m-%d"),
              "training time of all runs": f"{trained / 60:.1f} min",
              "wall time of this invocation": f"{(time.time() - start) / 60:.1f} min"}
    if extra:
        header["overrides"] = ", ".join(f"{k}={v}" for k, v in sorted(extra.items())
                                        if k != "data_dir")
    target = out / suite.name
    target.mkdir(parents=True, exist_ok=True)
    write_text(target / "results.md", results_markdown(suite, rows, header))
    write_text(target / "results.json", json.dumps(
        {"suite": suite.name, "header": header, "rows": rows,
         "runs": {f"{p.suite_run}/seed{p.seed}": str(p.run_dir) for p in planned}},
        indent=2) + "\n")
    from ..viz import save_figure, suite_chart

    save_figure(suite_chart(rows, f"{suite.name}: {suite.source}"), target / "chart.png")
    sys.stdout.write((target / "results.md").read_text())
    print(f"written: {target / 'results.md'}, {target / 'chart.png'}")
    return 0
