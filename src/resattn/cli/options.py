"""Command-line flags generated from the one declaration of each option (`resattn.config`).

A flag's type, choices and help come from the Config field; the help shows the real default and
the value each shipped recipe sets. Flags default to None so that only what the user typed
overrides the recipe and the config file.
"""

from __future__ import annotations

import argparse
from dataclasses import Field
from functools import cache
from typing import Any

from ..config import DEFAULTS, FIELDS, SECTIONS, load_recipe, recipe_names


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return " ".join(f"{v:g}" for v in value) if value else "none"
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


@cache
def _recipes() -> dict[str, dict[str, Any]]:
    return {name: load_recipe(name) for name in recipe_names()}


def help_text(key: str) -> str:
    """'peak learning rate [default 0.1; recipe fast: 0.2]'. An option whose default is None
    says in its own help what None means."""
    f = FIELDS[key]
    facts = [] if DEFAULTS[key] is None else [f"default {_show(DEFAULTS[key])}"]
    facts += [f"recipe {name}: {_show(values[key])}" for name, values in _recipes().items()
              if key in values and values[key] != DEFAULTS[key]]
    text = f.metadata["help"]
    if f.metadata["choices"] and len(f.metadata["choices"]) > 6:
        text += f"; one of {', '.join(f.metadata['choices'])}"
    if facts:
        text += f" [{'; '.join(facts)}]"
    return text.replace("%", "%%")


def _kind(f: Field) -> type:
    default = DEFAULTS[f.name]
    if default is None:  # Optional fields: drop_rate (float), data_dir (str)
        return float if "float" in str(f.type) else str
    return type(default)


def add_option(group, key: str, help: str | None = None) -> None:
    f = FIELDS[key]
    kind = _kind(f)
    kwargs: dict[str, Any] = {"default": None, "help": help or help_text(key)}
    if f.metadata["metavar"]:
        kwargs["metavar"] = f.metadata["metavar"]
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
        kwargs.pop("metavar", None)
    elif kind is list:
        kwargs.update(type=float, nargs="+")
    else:
        kwargs["type"] = kind
        if f.metadata["choices"]:
            kwargs["choices"] = f.metadata["choices"]
            if len(f.metadata["choices"]) > 6:  # listed in the help, not in the usage line
                kwargs["metavar"] = "NAME"
            else:
                kwargs.pop("metavar", None)
    group.add_argument(flag(key), **kwargs)


TITLES = {"model": "model", "data": "data", "augment": "augmentation", "optim": "optimisation",
          "schedule": "schedule", "train": "run"}


def add_config_options(p: argparse.ArgumentParser, sections: tuple[str, ...] = tuple(SECTIONS),
                       only: set[str] | None = None) -> None:
    """One flag per option of the given sections (or only the keys in `only`), grouped by
    section as in the TOML file."""
    for section in sections:
        keys = [k for k in SECTIONS[section] if only is None or k in only]
        if keys:
            group = p.add_argument_group(TITLES.get(section, section))
            for key in keys:
                add_option(group, key)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user gave on the command line."""
    return {k: v for k, v in vars(args).items() if k in FIELDS and v is not None}
