"""The package's dependency arrows point one way: models and data never import each other, the
engine and the building blocks never import the API, and nothing outside the command line
imports from it (the API must not live in cli/). Read from the source, nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "resattn"


def imported_parts(path: Path) -> set[str]:
    """The resattn subpackages and top-level modules `path` imports (`models`, `cli`, ...)."""
    rel = path.relative_to(PACKAGE).with_suffix("").parts
    package = rel[:-1]  # what a level-1 relative import starts from
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            target = [*base, *(node.module.split(".") if node.module else [])]
            names = [target] if target else [[a.name] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("resattn."):
            names = [node.module.split(".")[1:]]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1:] for a in node.names if a.name.startswith("resattn.")]
        else:
            continue
        parts |= {name[0] for name in names if name}
    return parts


def imports_of(part: str) -> dict[str, set[str]]:
    """{file: the other parts it imports} for every file of subpackage or module `part`."""
    files = sorted((PACKAGE / part).rglob("*.py")) if (PACKAGE / part).is_dir() \
        else [PACKAGE / f"{part}.py"]
    return {str(f.relative_to(PACKAGE)): imported_parts(f) - {part} for f in files}


FORBIDDEN = {
    "models": {"data", "engine", "api", "cli", "serve", "viz", "experiment"},
    "data": {"models", "engine", "api", "cli", "serve", "viz", "experiment"},
    # the engine takes objects (model, loaders, optimizer, plan, settings), not a Config
    "engine": {"api", "cli", "serve", "experiment", "config"},
    "weights": {"api", "cli", "serve"},
    "viz": {"api", "cli", "serve", "engine"},
    "api": {"cli"},
    "serve": {"cli"},
    "experiment": {"cli"},
    # the command line parses, calls the API (or the experiment runner) and prints
    "cli": {"engine", "data", "models"},
    "config": {"api", "cli", "engine"},
    "runtime": {"api", "cli", "engine"},
    "provenance": {"api", "cli", "engine", "models", "data", "viz", "serve", "experiment"},
    # the bottom layer: everything writes files through it
    "files": {"api", "cli", "engine", "models", "data", "weights", "viz", "serve",
              "experiment", "config", "runtime"},
}


@pytest.mark.parametrize("part", list(FORBIDDEN))
def test_dependencies_point_one_way(part):
    wrong = {f: sorted(parts & FORBIDDEN[part]) for f, parts in imports_of(part).items()
             if parts & FORBIDDEN[part]}
    assert not wrong, f"{part} imports what it must not: {wrong}"


def test_the_reader_sees_relative_and_absolute_imports():
    """The check above is only as good as this reader: it must see every form of import."""
    assert imported_parts(PACKAGE / "cli" / "export.py") >= {"api", "cli"}
    assert "api" in imported_parts(PACKAGE / "__init__.py")
    assert imported_parts(PACKAGE / "api" / "training.py") >= {"engine", "config", "errors"}


def test_only_viz_draws():
    """matplotlib is the viz package's alone: the rest of the library imports without it."""
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "viz":
            continue
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not any(name.split(".")[0] == "matplotlib" for name in names), path
