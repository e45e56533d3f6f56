"""Documentation that cannot rot: every ```python block of README.md and docs/*.md runs, every
`resattn ...` command line they show parses, every relative link and image resolves, the
results they quote agree with the recorded runs and the weights registry, and the README's
results table is the one generated from docs/results.md.

A python block runs in a fresh namespace in an empty folder holding `photo.jpg` and `cat.jpg`.
An HTML comment on the line before a block adjusts it for the test, invisible to readers:
`<!-- test: slow; time_budget=600 => time_budget=20 -->` puts it in the slow tier (where the
real CIFAR-10 is $RESATTN_DATA_DIR) and replaces text before running it."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ALL_MARKDOWN = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
MARK = re.compile(r"<!--\s*test:(.*?)-->\s*$")


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    slow: bool = False

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(pages: list[Path] = PAGES) -> list[Block]:
    """Every fenced block with its language, the line it starts on and its test marker."""
    out = []
    for page in pages:
        text = page.read_text()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            block = Block(page, line, m.group(1), m.group(2))
            mark = MARK.search(before)
            if mark:
                for part in (p.strip() for p in mark.group(1).split(";")):
                    if part == "slow":
                        block.slow = True
                    elif "=>" in part:
                        old, new = (s.strip() for s in part.split("=>"))
                        assert old in block.code, f"{block.id}: '{old}' is not in the block"
                        block.code = block.code.replace(old, new)
                    elif part:
                        raise AssertionError(f"{block.id}: unknown test marker '{part}'")
            out.append(block)
    return out


PYTHON = [b for b in blocks() if b.lang == "python"]


def _image(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), np.uint8)).save(path)


def _run(block: Block, folder: Path, monkeypatch) -> None:
    monkeypatch.chdir(folder)
    _image(folder / "photo.jpg", 0)
    _image(folder / "cat.jpg", 1)
    code = compile(block.code, block.id, "exec")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(code, {"__name__": "__docs__"})  # noqa: S102 - the documentation's own code


@pytest.mark.parametrize("block", [b for b in PYTHON if not b.slow], ids=lambda b: b.id)
def test_python_block_runs(block, tmp_path, monkeypatch):
    _run(block, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in PYTHON if b.slow], ids=lambda b: b.id)
def test_slow_python_block_runs(block, tmp_path, monkeypatch, cifar10_dir):
    monkeypatch.setenv("RESATTN_DATA_DIR", str(cifar10_dir))
    _run(block, tmp_path, monkeypatch)


def test_the_documentation_has_python_blocks_in_both_tiers():
    """The harness above is only as good as what it finds."""
    assert len(PYTHON) >= 8 and any(b.slow for b in PYTHON) and any(not b.slow for b in PYTHON)
    assert {b.page.name for b in PYTHON} >= {"README.md", "api.md", "models.md"}


@pytest.mark.parametrize("block", [b for b in blocks() if b.lang == "toml"],
                         ids=lambda b: b.id)
def test_toml_block_is_a_valid_recipe_or_suite(block, tmp_path):
    """A suite (it has [[runs]]) loads as `resattn experiment` loads it; anything else is a
    configuration file as `--config` reads it."""
    from resattn.config import from_toml_dict, tomllib
    from resattn.experiment import load_suite

    if "[[runs]]" in block.code:
        (tmp_path / "suite.toml").write_text(block.code)
        assert load_suite(str(tmp_path / "suite.toml")).runs
    else:
        assert from_toml_dict(tomllib.loads(block.code), block.id)


# ---- command lines -------------------------------------------------------------------------

def _command_lines(text: str) -> list[str]:
    """Shell commands of a bash block, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.split(" #")[0].strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _resattn_argv(command: str) -> list[str] | None:
    """The arguments after `resattn` (or `python -m resattn`, `torchrun ... -m resattn`), with
    optional groups `[--flag VALUE]` taken as given; None if the line does not run resattn."""
    words = shlex.split(command.replace("[", " ").replace("]", " "))
    for i, word in enumerate(words):
        if word == "resattn" and (i == 0 or words[i - 1] == "-m"):
            return [w for w in words[i + 1:] if w != "..."]
    return None


def commands() -> list[tuple[str, str]]:
    """(where, command) of every resattn command line in a bash block."""
    return [(block.id, line) for block in blocks() if block.lang in ("bash", "sh", "console")
            for line in _command_lines(block.code) if _resattn_argv(line) is not None]


def mentions() -> list[tuple[str, str]]:
    """(page, text) of every inline code span that starts with `resattn `: often a part of a
    command (`resattn train --viz-every N`), so its subcommand and flags are checked."""
    return [(page.name, span) for page in PAGES
            for span in re.findall(r"`(resattn [^`]+)`", FENCE.sub("", page.read_text()))]


COMMANDS, MENTIONS = commands(), mentions()


def _parse(argv: list[str], where: str, capsys) -> None:
    from resattn.cli import build_parser

    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 0, f"{where}: `{' '.join(argv)}` does not parse: " \
                              f"{capsys.readouterr().err}"


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[c for _, c in COMMANDS])
def test_command_line_parses(where, command, capsys):
    _parse(_resattn_argv(command), where, capsys)


def _flags(subcommand: str) -> set[str]:
    from resattn.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {s for a in sub.choices[subcommand]._actions for s in a.option_strings}


@pytest.mark.parametrize(("where", "text"), MENTIONS, ids=[t for _, t in MENTIONS])
def test_inline_command_names_a_real_subcommand_and_flags(where, text, capsys):
    from resattn.cli import COMMANDS as SUBCOMMANDS

    argv = _resattn_argv(text)
    if not argv or argv[0].startswith("-"):  # `resattn --version`
        _parse(argv, where, capsys)
        return
    assert argv[0] in SUBCOMMANDS, f"{where}: `{text}`: no subcommand {argv[0]}"
    unknown = {w.split("=")[0] for w in argv[1:] if w.startswith("--")} - _flags(argv[0])
    assert not unknown, f"{where}: `{text}`: resattn {argv[0]} has no {sorted(unknown)}"


def test_every_subcommand_is_shown_in_the_documentation():
    from resattn.cli import COMMANDS as SUBCOMMANDS

    shown = {_resattn_argv(c)[0] for _, c in COMMANDS}
    assert set(SUBCOMMANDS) <= shown, set(SUBCOMMANDS) - shown


def test_a_wrong_command_in_the_documentation_would_fail(capsys):
    from resattn.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(_resattn_argv("resattn train --no-such-flag 3"))
    assert "--viz-every" in _flags("train") and "--no-such-flag" not in _flags("train")


def test_make_targets_shown_exist():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    shown = {line.split()[1] for block in blocks() if block.lang == "bash"
             for line in _command_lines(block.code) if line.startswith("make ")}
    assert shown and shown <= targets, shown - targets


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("variables,expected", [
    ([], "--time-budget 600 --out runs"),
    (["DATA_DIR=/my data/c10", "BUDGET=120"],
     '--time-budget 120 --out runs --data-dir "/my data/c10"'),
])
def test_make_run_passes_its_variables_to_train(variables, expected):
    """`make run DATA_DIR=...` reaches `resattn train --data-dir` (make -n prints, runs nothing)."""
    proc = subprocess.run(["make", "-n", "-B", "run", *variables], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    text = re.sub(r"\\\n[ \t]*", " ", proc.stdout)
    train = next(line for line in text.splitlines() if "resattn train" in line)
    assert " ".join(train.split()).endswith(expected), train


# ---- links ---------------------------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}


def links() -> list[tuple[Path, str]]:
    out = []
    for page in ALL_MARKDOWN:
        text = FENCE.sub("", page.read_text())
        out += [(page, target) for target in LINK.findall(text)
                if not re.match(r"[a-z]+:", target)]
    return out


LINKS = links()


@pytest.mark.parametrize(("page", "target"), LINKS,
                         ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in LINKS])
def test_relative_link_resolves(page, target):
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
    if anchor:
        assert resolved.suffix == ".md" and anchor in _anchors(resolved), \
            f"{page.relative_to(ROOT)}: no heading #{anchor} in {resolved.name}"


def test_links_are_found_and_a_broken_one_would_fail(tmp_path):
    assert len(LINKS) >= 30 and any(t.endswith(".png") for _, t in LINKS)
    assert _slug("Speed on the CPU") == "speed-on-the-cpu"
    assert _slug("`resattn serve`: the explorer") == "resattn-serve-the-explorer"
    assert not (ROOT / "docs" / "no-such-page.md").exists()


# ---- figures -------------------------------------------------------------------------------

def _load_results_table():
    """benchmarks/results_table.py: the README's table, and the markdown table reader."""
    spec = importlib.util.spec_from_file_location(
        "results_table", ROOT / "benchmarks" / "results_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RESULTS_TABLE = _load_results_table()
tables = RESULTS_TABLE.tables
RESULTS = ROOT / "docs" / "results.md"


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _records(row: dict[str, str]) -> Path | None:
    m = re.search(r"\]\(([^)]+)\)", row.get("records", ""))
    if m and (RESULTS.parent / m.group(1) / "summary.json").is_file():
        return RESULTS.parent / m.group(1)
    return None


def test_training_rows_are_the_recorded_runs():
    """Each row that links to a run's records quotes that run's epochs, mean images/s,
    validation and test accuracy (its own final evaluation, flip TTA where it used it)."""
    checked = 0
    for table in tables(RESULTS.read_text()):
        for row in table:
            folder = _records(row)
            if folder is None:
                continue
            s = json.loads((folder / "summary.json").read_text())
            rate = s["steps"] * s.get("global_batch_size", 128) / s["train_time_s"]
            assert row["epochs"] == f"{s['epochs']:.2f}", row["id"]
            assert row["img/s"] == f"{rate:,.0f}", row["id"]
            assert row["val top-1"] == _pct(s["val_acc"]), row["id"]
            assert s["tta"] and row["test, flip TTA"] == _pct(s["test_acc"]), row["id"]
            checked += 1
    assert checked >= 15


def test_published_weights_rows_are_the_registry():
    registry = json.loads((ROOT / "src" / "resattn" / "weights" / "registry.json").read_text())
    (rows,) = [t for t in tables(RESULTS.read_text()) if "tag" in t[0]]
    assert [r["tag"].strip("`") for r in rows] == list(registry)
    for row in rows:
        entry = registry[row["tag"].strip("`")]
        assert row["test top-1"] == _pct(entry["metrics"]["top1"])
        assert row["flip TTA"] == _pct(entry["metrics"]["top1_tta"])
        assert row["top-5"] == _pct(entry["metrics"]["top5"])
        assert row["epochs"] == f"{entry['training']['epochs']:.2f}"


def test_every_percentage_in_the_documentation_is_a_row_of_results_md():
    """README and docs quote figures (accuracies are given to two decimals) from
    docs/results.md, never figures of their own."""
    text = RESULTS.read_text()
    known = set(re.findall(r"\d+\.\d\d%", text))
    for page in PAGES:
        if page == RESULTS:
            continue
        quoted = set(re.findall(r"\d+\.\d\d%", FENCE.sub("", page.read_text())))
        assert quoted <= known, f"{page.name} quotes {sorted(quoted - known)}, not in results.md"


def test_every_results_row_has_a_unique_id():
    ids = [row["id"] for t in tables(RESULTS.read_text()) for row in t if "id" in row]
    assert len(ids) == len(set(ids)) >= 60


def test_the_readme_results_table_is_generated_from_results_md():
    module = RESULTS_TABLE
    readme = (ROOT / "README.md").read_text()
    assert module.render(RESULTS.read_text()) in readme, \
        "README.md's results table is stale: run python benchmarks/results_table.py --write"


def test_the_readme_table_follows_a_changed_result():
    module = RESULTS_TABLE
    text = RESULTS.read_text()
    changed = text.replace("| 93.49% |", "| 93.50% |", 1)
    assert changed != text and module.render(changed) != module.render(text)


# ---- the README's shape --------------------------------------------------------------------

def test_readme_is_short_and_for_users():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    results = re.search(r"<!-- results:begin -->.*<!-- results:end -->", readme, re.S)
    outside = readme.replace(results.group(0), "") if results else readme
    assert not re.search(r"20\d\d-\d\d-\d\d", outside), "dates belong in the results table"
    assert not re.search(r"EPYC|Xeon|H200|P100", outside), "machines belong in the table"


def test_the_resume_page_lists_exactly_the_resumable_options():
    """docs/training.md names the flags a resume may change: the options declared resumable."""
    from resattn.config import RESUMABLE

    text = (ROOT / "docs" / "training.md").read_text()
    sentence = text[text.index("Only `--epochs`"):text.index("may differ from the run's own")]
    flags = re.findall(r"`--([a-z-]+)`", sentence)
    assert sorted(f.replace("-", "_") for f in flags) == sorted(RESUMABLE)
