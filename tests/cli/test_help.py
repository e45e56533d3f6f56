"""Every command documents itself: each flag and argument has help text, and the help names
the default whenever there is one."""

from __future__ import annotations

import argparse

import pytest
from conftest import cli

from resattn.cli import build_parser

SILENT = (argparse._HelpAction, argparse._StoreTrueAction, argparse._StoreFalseAction,
          argparse.BooleanOptionalAction, argparse._AppendAction)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def shows_default(action: argparse.Action) -> bool:
    """The help mentions the default: `%(default)s`, the word "default", or the value."""
    text = action.help or ""
    value = action.default
    shown = " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return "%(default)" in text or "default" in text or shown in text


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_flag_has_help_and_its_default(name):
    actions = [a for a in subcommands()[name]._actions if not isinstance(a, argparse._HelpAction)]
    undocumented = [a.option_strings[-1] if a.option_strings else a.dest
                    for a in actions if not (a.help or "").strip()]
    assert not undocumented, f"resattn {name}: no help for {undocumented}"
    hidden = [a.option_strings[-1] for a in actions
              if a.option_strings and not isinstance(a, SILENT)
              and a.default not in (None, argparse.SUPPRESS) and not shows_default(a)]
    assert not hidden, f"resattn {name}: the help does not give the default of {hidden}"


def test_help_renders_the_defaults():
    out = cli("predict", "--help").stdout
    assert "(default: 5)" in out and "(default: 64)" in out and "(default: auto)" in out
