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


class Version(argparse.Action):
    """`--version`: what a bug report needs, read only when asked (it touches the devices)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the versions, the device and the default precision, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_report())
        parser.exit()


def version_report() -> str:
    """'resattn 0.1.0 (torch 2.13.0+cpu, Python 3.12.3)', then one line per device with the
    precision `--amp auto` picks on it."""
    import platform

    import torch

    from .. import __version__
    from ..engine.provenance import device_name
    from ..runtime import resolve_amp

    lines = [f"resattn {__version__} (torch {torch.__version__}, "
             f"Python {platform.python_version()})"]
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices += [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    for device in devices:
        amp = resolve_amp("auto", device)
        lines.append(f"{device}: {device_name(device)}; default precision "
                     f"{'fp32' if amp == 'off' else amp}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="resattn", description="Residual Attention Networks: build, train, evaluate, explain.")
    parser.add_argument("--version", action=Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        module.add_parser(sub, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is returned (argparse's own exits raise SystemExit).

    The package's log lines go to the stderr of the moment, through a handler that lives as long
    as the command: a program that calls `main` keeps its own logging setup.
    """
    args = build_parser().parse_args(argv)
    log = logging.getLogger("resattn")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        return _run(args)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def _run(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command].run(args) or 0
    except UserError as exc:
        print(f"resattn {args.command}: error: {user_message(exc, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"resattn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # not the user's doing: keep the traceback for the report
        traceback.print_exc()
        print(f"resattn {args.command}: internal error; this is a bug, please report it with "
              "the command line, the traceback above and the output of resattn --version",
              file=sys.stderr)
        return 1


def user_message(exc: UserError, args: argparse.Namespace | None = None) -> str:
    """One line; an invalid option is named by its flag when it has one (a training option,
    or a flag of the command that ran)."""
    from ..config import FIELDS

    flags = vars(args) if args is not None else {}
    if isinstance(exc, InvalidOption) and (exc.key in FIELDS or exc.key in flags):
        return exc.as_flag()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
