"""`resattn` command line: one module per subcommand, each with `add_parser` and `run`."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from ..errors import InvalidOption, UserError
from . import bench as bench_cmd
from . import data as data_cmd
from . import evaluate as evaluate_cmd
from . import experiment as experiment_cmd
from . import export as export_cmd
from . import models as models_cmd
from . import plot as plot_cmd
from . import predict as predict_cmd
from . import serve as serve_cmd
from . import train as train_cmd
from . import visualize as visualize_cmd

COMMANDS = {"train": train_cmd, "evaluate": evaluate_cmd, "predict": predict_cmd,
            "visualize": visualize_cmd, "plot": plot_cmd, "export": export_cmd,
            "experiment": experiment_cmd, "bench": bench_cmd, "models": models_cmd,
            "data": data_cmd, "serve": serve_cmd}


class Parser(argparse.ArgumentParser):
    """Usage mistakes print one line that points at --help, not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="resattn", description="Residual Attention Networks: build, train, evaluate, explain.")
    import torch

    from .. import __version__

    parser.add_argument("--version", action="version",
                        version=f"resattn {__version__} (torch {torch.__version__})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        module.add_parser(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return COMMANDS[args.command].run(args) or 0
    except UserError as exc:
        print(f"resattn {args.command}: error: {user_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"resattn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # not the user's doing: keep the traceback for the report
        traceback.print_exc()
        print(f"resattn {args.command}: internal error; this is a bug, please report it with "
              "the command line and the traceback above", file=sys.stderr)
        return 1


def user_message(exc: UserError) -> str:
    """One line; an invalid option is named by its flag when it has one."""
    from ..config import FIELDS

    if isinstance(exc, InvalidOption) and exc.key in FIELDS:
        return exc.as_flag()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
