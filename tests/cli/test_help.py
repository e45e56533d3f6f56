"""Every command documents itself: each flag and argument has help text, and the help names
the default whenever there is one."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
from conftest import cli

import resattn
import resattn.api
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


def test_help_and_import_load_no_torch():
    """`resattn --help` and `import resattn` import neither torch nor any command's module: a
    command's module loads when that command runs (the help answers at once)."""
    code = ("import sys, contextlib, io\n"
            "import resattn\n"
            "assert 'torch' not in sys.modules, 'import resattn loaded torch'\n"
            "from resattn.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    try:\n"
            "        main(['--help'])\n"
            "    except SystemExit as e:\n"
            "        assert e.code == 0\n"
            "assert 'train a model' in out.getvalue()\n"
            "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('resattn.'))\n"
            "print(loaded)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['resattn.cli', 'resattn.errors']"
    # and the API still answers to its names and subpackages, loading them then
    assert resattn.train is resattn.api.train and "plot" in dir(resattn)
    fresh = subprocess.run([sys.executable, "-c", "import resattn; print(resattn.api.Predictor"
                            ".__name__, resattn.engine.Trainer.__name__)"],
                           capture_output=True, text=True, check=False)
    assert fresh.stdout.split() == ["Predictor", "Trainer"], fresh.stderr
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        resattn.nothing  # noqa: B018


def test_every_command_has_one_line_of_help_in_both_parsers():
    """The light parser (`resattn --help`) shows each command with the help its full parser
    declares: one table, COMMANDS, feeds both."""
    from resattn.cli import COMMANDS, build_parser

    def helps(parser):
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return {c.dest: c.help for c in sub._choices_actions}

    assert helps(build_parser("")) == helps(build_parser()) == COMMANDS
    assert set(build_parser("train")._subparsers._group_actions[0].choices) == set(COMMANDS)
