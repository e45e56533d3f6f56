"""Errors that mean the user must change something. The CLI prints them as one line and exits
2; any other exception is a bug and keeps its traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class UserError(Exception):
    """A mistake in what the user asked for or gave (option, file, data): say what to do."""


class InvalidOption(UserError, ValueError):
    """An option value the library cannot use. A ValueError for Python callers; the CLI names
    the flag (`--val-size 60000 is not valid; ...`), the library the key (`val_size=60000 ...`).
    """

    def __init__(self, key: str, value: Any, rule: str):
        self.key, self.value, self.rule = key, value, rule
        super().__init__(f"{key}={value!r} is not valid; {rule}")

    def as_flag(self) -> str:
        return f"--{self.key.replace('_', '-')} {self.value!r} is not valid; {self.rule}"


class Interrupted(Exception):
    """Training stopped on Ctrl-C (or SIGTERM) after saving `checkpoint`; `--resume` continues
    it exactly. Not a mistake: the CLI prints it and exits 130."""

    def __init__(self, checkpoint: Path):
        super().__init__(f"interrupted; checkpoint saved to {checkpoint}; continue with "
                         f"--resume {checkpoint.parent}")
        self.checkpoint = checkpoint
