"""Bench workers that end badly, importable by a spawned process (tests/ is on its path)."""

import os
import signal
import sys


def killed(queue, kwargs) -> None:
    """As the out-of-memory killer ends a process: SIGKILL, no word."""
    os.kill(os.getpid(), signal.SIGKILL)


def exits(queue, kwargs) -> None:
    sys.exit(3)
