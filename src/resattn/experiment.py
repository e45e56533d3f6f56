"""Experiment suites: lists of ordinary training runs defined as data (TOML), planned into run
directories keyed by their resolved configuration, so finished runs are reused by any suite."""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .config import FIELDS, NEUTRAL, Config, resolve, to_dict
from .errors import UserError


@dataclass
class Suite:
    name: str
    description: str
    source: str
    runs: list[dict[str, Any]]  # each: name, reference (or None), overrides


@dataclass
class PlannedRun:
    suite_run: str
    seed: int
    reference: float | None
    cfg: Config
    run_dir: Path

    def status(self) -> str:
        if (self.run_dir / "summary.json").is_file():
            return "done"
        if (self.run_dir / "last.pt").is_file():
            return "partial"
        return "todo"


def suite_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("resattn.suites").iterdir()
                  if p.name.endswith(".toml"))


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name, or the user's own TOML file."""
    path = Path(name_or_path)
    if name_or_path in suite_names():
        text = (resources.files("resattn.suites") / f"{name_or_path}.toml").read_text()
        name = name_or_path
    elif path.suffix == ".toml" and path.is_file():
        text, name = path.read_text(), path.stem
    else:
        raise UserError(f"unknown suite {name_or_path!r}; shipped suites: "
                        f"{', '.join(suite_names())}, or pass a .toml file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"suite {name} is not valid TOML ({exc})") from None
    unknown = set(data) - {"description", "source", "base", "runs"}
    if unknown:
        raise UserError(f"suite {name}: unknown top-level keys {', '.join(sorted(unknown))}")
    base = data.get("base", {})
    if not isinstance(base, dict):
        raise UserError(f"suite {name}: base must be a table ([base] with configuration keys)")
    listed = data.get("runs", [])
    if not isinstance(listed, list) or not all(isinstance(r, dict) for r in listed):
        raise UserError(f"suite {name}: runs must be tables ([[runs]] entries with a name)")
    runs, seen = [], set()
    for i, run in enumerate(listed):
        run = dict(run)
        run_name = str(run.pop("name", f"run{i + 1}"))
        if run_name in seen:  # results are grouped by name: two runs would be averaged
            raise UserError(f"suite {name}: two runs are named {run_name!r}; names must differ")
        seen.add(run_name)
        reference = run.pop("reference", None)
        if reference is not None and (isinstance(reference, bool)
                                      or not isinstance(reference, (int, float))):
            raise UserError(f"suite {name}, run {run_name}: reference {reference!r} must be a "
                            "number (the paper's error in %)")
        overrides = {**base, **run}
        bad = sorted(set(overrides) - set(FIELDS))
        if bad:
            raise UserError(f"suite {name}, run {run_name}: unknown keys {', '.join(bad)}")
        runs.append({"name": run_name, "reference": reference, "overrides": overrides})
    if not runs:
        raise UserError(f"suite {name} lists no [[runs]]")
    return Suite(name, data.get("description", ""), data.get("source", ""), runs)


def parse_budget(budget: str | None) -> dict[str, Any]:
    """'seconds:600' -> time_budget 600; 'epochs:3' -> 3 epochs; None -> the recipe's own."""
    if budget is None:
        return {}
    kind, _, value = budget.partition(":")
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if kind == "seconds" and number > 0:
        return {"time_budget": number}
    if kind == "epochs" and number >= 1 and number.is_integer():
        return {"epochs": int(number)}
    raise UserError(f"--budget {budget!r} is not valid; use seconds:N or epochs:N")


def run_key(cfg: Config) -> str:
    """Hash of the values that differ from the defaults (neutral keys aside), so a key added to
    Config later, with a default, leaves existing run directories valid."""
    defaults = to_dict(Config())
    data = {k: v for k, v in to_dict(cfg).items()
            if k not in NEUTRAL and v != defaults[k]}
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def plan(suite: Suite, out: Path, recipe: str | None, budget: dict[str, Any], seeds: int,
         extra: dict[str, Any]) -> list[PlannedRun]:
    runs = []
    extra = dict(extra)
    first = extra.pop("seed", 0)  # --set seed=N: the seeds are N, N+1, ...
    for run in suite.runs:
        if "seed" in run["overrides"]:
            raise UserError(f"suite {suite.name}: run {run['name']!r} sets seed; seeds come "
                            "from --seeds (and --set seed=N for the first one)")
        for seed in range(first, first + seeds):
            cfg = resolve(recipe, None, {**run["overrides"], **budget, **extra, "seed": seed})
            run_dir = out / "runs" / f"{cfg.model}-{run_key(cfg)}"
            runs.append(PlannedRun(run["name"], seed, run["reference"], cfg, run_dir))
    return runs


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(suite: Suite, planned: list[PlannedRun]) -> list[dict[str, Any]]:
    """Per suite run: errors (%) as mean and spread over seeds, time, epochs."""
    rows = []
    for run in suite.runs:
        summaries = [json.loads((p.run_dir / "summary.json").read_text())
                     for p in planned if p.suite_run == run["name"] and p.status() == "done"]
        row = {"name": run["name"], "reference": run["reference"], "seeds": len(summaries)}
        for key in ("test_acc", "val_acc", "train_acc"):
            vals = [100 * (1 - s[key]) for s in summaries if s.get(key) is not None]
            row[key.replace("_acc", "_error")] = _mean_std(vals) if vals else None
        if summaries:
            row["model"] = summaries[0]["model"]
            row["train_time_s"] = statistics.fmean(s["train_time_s"] for s in summaries)
            row["epochs"] = statistics.fmean(s["epochs"] for s in summaries)
        rows.append(row)
    return rows


def _fmt(pair: tuple[float, float] | None) -> str:
    if pair is None:
        return "-"
    mean, std = pair
    return f"{mean:.2f}" if std == 0 or math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def compare(row: dict[str, Any], base: dict[str, Any] | None) -> str:
    """The test-error difference to the base row, and whether it exceeds the seeds' spread."""
    if base is None or row.get("test_error") is None or base.get("test_error") is None:
        return "-"
    (mean, std), (base_mean, base_std) = row["test_error"], base["test_error"]
    diff = mean - base_mean
    if min(row["seeds"], base["seeds"]) < 2:
        return f"{diff:+.2f} (one seed)"
    spread = math.sqrt(std ** 2 + base_std ** 2)
    return f"{diff:+.2f}" + (" (within noise)" if abs(diff) <= spread else "")


def results_markdown(suite: Suite, rows: list[dict[str, Any]], header: dict[str, str]) -> str:
    lines = [f"# {suite.name}: {suite.description}", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    base = rows[0] if rows else None
    lines += [f"- **reference column**: {suite.source}", "",
              "| run | model | reference error % | test error % | val error % | train error % "
              f"| vs {base['name'] if base else '-'} | train time | epochs | seeds |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = "-" if r["reference"] is None else f"{r['reference']:.2f}"
        time_s = f"{r['train_time_s'] / 60:.1f} min" if "train_time_s" in r else "-"
        epochs = f"{r['epochs']:.2f}" if "epochs" in r else "-"
        lines.append(f"| {r['name']} | {r.get('model', '-')} | {ref} | {_fmt(r['test_error'])} "
                     f"| {_fmt(r['val_error'])} | {_fmt(r['train_error'])} | "
                     f"{compare(r, base) if r is not base else '-'} | {time_s} | "
                     f"{epochs} | {r['seeds']} |")
    lines += ["", "Errors are 100 - accuracy, mean ± standard deviation over the seeds. The "
              f"\"vs {base['name'] if base else '-'}\" column is the difference in test error; "
              "it is marked *within noise* when smaller than the two rows' combined spread "
              "(the square root of the sum of their variances), and *one seed* when a row has "
              "no spread to compare with.", "",
              "Test error uses the final weights (raw or EMA, "
              "chosen on validation); val error is on images held out of the training set; "
              "train error is on the augmented batches of the last epoch."]
    return "\n".join(lines) + "\n"


MAX_SEEDS = 1000  # seeds per run of a suite: far beyond any table, and a listing that fits


def suite_plan(suite: str, out: str | Path = "runs/experiments", recipe: str = "fast",
               budget: str | None = None, seeds: int = 1,
               overrides: dict[str, Any] | None = None,
               only: list[str] | None = None) -> tuple[Suite, list[PlannedRun]]:
    """The suite (a shipped name or a .toml file) and its runs x seeds, each with its run
    directory under `out` and its status (`PlannedRun.status()`): what `run_suite` would do.
    `budget` "seconds:N" or "epochs:N" scales every run; `overrides` sets any configuration
    key of every run; `only` keeps the named runs."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise UserError(f"--seeds {seeds} is not valid; it must be in [1, {MAX_SEEDS}]")
    loaded = load_suite(suite)
    if only:
        unknown = sorted(set(only) - {r["name"] for r in loaded.runs})
        if unknown:
            raise UserError(f"--only: suite {loaded.name} has no run {unknown[0]!r}; its runs: "
                            f"{', '.join(r['name'] for r in loaded.runs)}")
        loaded.runs = [r for r in loaded.runs if r["name"] in only]
    return loaded, plan(loaded, Path(out), recipe, parse_budget(budget), seeds,
                        dict(overrides or {}))


def run_suite(suite: str, out: str | Path = "runs/experiments", recipe: str = "fast",
              budget: str | None = None, seeds: int = 1,
              overrides: dict[str, Any] | None = None, only: list[str] | None = None,
              progress: bool = True) -> Path:
    """Train every run of the suite that is not done (a partial one resumes, bit-exactly), then
    write results.md (our numbers beside the paper's), results.json and chart.png into
    OUT/SUITE; returns that folder. Ctrl-C raises `resattn.errors.Interrupted`: the same call
    continues the suite. Arguments as `suite_plan`."""
    import time

    from .api import train_config
    from .engine.checkpoint import load_checkpoint
    from .files import write_text
    from .provenance import environment
    from .runtime import resolve_device
    from .viz import save_figure, suite_chart

    loaded, planned = suite_plan(suite, out, recipe, budget, seeds, overrides, only)
    start = time.time()
    for i, p in enumerate(planned, 1):
        status = p.status()
        print(f"[{i}/{len(planned)}] {p.suite_run} seed {p.seed}: {status} ({p.run_dir})",
              flush=True)
        if status != "done":
            resume = load_checkpoint(p.run_dir / "last.pt") if status == "partial" else None
            train_config(p.cfg, p.run_dir, resume, progress=progress)
    rows = aggregate(loaded, planned)
    trained = sum(r.get("train_time_s", 0) * r["seeds"] for r in rows)
    env = environment(resolve_device(planned[0].cfg.device))
    header = {"recipe": recipe, "budget per run": budget or "the recipe's own",
              "seeds": str(seeds), "hardware": env["device_name"],  # CPU names carry threads
              "software": f"resattn {env['resattn']}, torch {env['torch']}, "
                          f"Python {env['python']}",
              "date": time.strftime("%Y-%m-%d"),
              "training time of all runs": f"{trained / 60:.1f} min",
              "wall time of this invocation": f"{(time.time() - start) / 60:.1f} min"}
    if overrides:
        header["overrides"] = ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())
                                        if k != "data_dir")
    target = Path(out) / loaded.name
    target.mkdir(parents=True, exist_ok=True)
    write_text(target / "results.md", results_markdown(loaded, rows, header))
    write_text(target / "results.json", json.dumps(
        {"suite": loaded.name, "header": header, "rows": rows,
         "runs": {f"{p.suite_run}/seed{p.seed}": str(p.run_dir) for p in planned}},
        indent=2) + "\n")
    save_figure(suite_chart(rows, f"{loaded.name}: {loaded.source}"), target / "chart.png")
    return target


def explain_suite(suite: str, images: int = 500, methods: tuple[str, ...] | None = None,
                  progress: bool = True, **where: Any) -> Path:
    """Faithfulness of the saliency maps of every finished run of the suite (`resattn explain`
    on each run's final model, `images` test images, the same seeded draw for all): per run
    and method, deletion and insertion AUC and the difference to random order, with 95%
    intervals, in OUT/SUITE/faithfulness.md; each run's own report in RUN/faithfulness/ (kept,
    and reused when the same images and methods are asked again). `where`: as `suite_plan`."""
    from .api.faithfulness import DEFAULT_METHODS, faithfulness, table_rows
    from .files import write_text

    loaded, planned = suite_plan(suite, **where)
    methods = tuple(methods or DEFAULT_METHODS)
    overrides = where.get("overrides") or {}
    lines = [f"# {loaded.name}: faithfulness of the saliency maps", "",
             f"{images} test images per run (seed 0, the same for every run); deletion and "
             "insertion AUC, mean [95% bootstrap interval]; `- random`: the paired difference "
             "to a random order (deletion: below 0 is better than random; insertion: above "
             "0).", "", "| run | seed | test error % | method | deletion AUC | insertion AUC "
             "| deletion - random | insertion - random |", "|---|---|---|---|---|---|---|---|"]
    missing = []
    for p in planned:
        if p.status() != "done":
            missing.append(f"{p.suite_run} (seed {p.seed})")
            continue
        saved = p.run_dir / "faithfulness" / "faithfulness.json"
        report = json.loads(saved.read_text()) if saved.is_file() else None
        if report is None or report["images"] != images or \
                {r["method"].split(".")[0] for r in report["scores"]} != {*methods, "random"}:
            print(f"{p.suite_run} seed {p.seed}: explaining {images} images", flush=True)
            found = faithfulness(p.run_dir, images=images, methods=methods,
                                 data_dir=overrides.get("data_dir"),
                                 device=overrides.get("device") or "auto", progress=progress)
            found.save(saved.parent)
            report = found.to_dict()
        summary = json.loads((p.run_dir / "summary.json").read_text())
        error = f"{100 * (1 - summary['test_acc']):.2f}" if summary.get("test_acc") else "-"
        lines += table_rows(report["scores"], f"{p.suite_run} | {p.seed} | {error} | ")
    if missing:
        lines += ["", f"Not trained yet (run `resattn experiment {loaded.name}` with the same "
                  f"options first): {', '.join(missing)}."]
    target = Path(where.get("out", "runs/experiments")) / loaded.name
    target.mkdir(parents=True, exist_ok=True)
    write_text(target / "faithfulness.md", "\n".join(lines) + "\n")
    return target

