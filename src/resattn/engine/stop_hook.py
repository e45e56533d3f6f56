"""A test hook that interrupts training at a known step, whatever the machine's speed.

`RESATTN_SIGNAL_AT_STEP="N:SIGNAL"` (SIGNAL: SIGINT, SIGTERM or SIGKILL) makes the process send
itself SIGNAL right after the N-th training step it runs, counted over every run of the process
(a suite trains several). SIGINT and SIGTERM then take the path of a Ctrl-C (the step is saved,
exit code 130); SIGKILL ends the process as a crash would. Tests set it instead of sleeping and
racing the run; users have no reason to."""

from __future__ import annotations

import os
import signal

from ..errors import UserError

ENV = "RESATTN_SIGNAL_AT_STEP"
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


def parse(value: str | None) -> tuple[int, signal.Signals] | None:
    """'12:SIGINT' -> (12, SIGINT); None or '' -> None."""
    if not value:
        return None
    step, _, name = value.partition(":")
    if not step.isdigit() or int(step) < 1 or name not in SIGNALS:
        raise UserError(f"{ENV}={value!r} is not valid; expected STEP:SIGNAL with STEP >= 1 and "
                        f"SIGNAL one of {', '.join(SIGNALS)}, e.g. 12:SIGINT")
    return int(step), SIGNALS[name]


class StepSignal:
    """Counts the training steps of this process; sends the signal after the chosen one."""

    steps = 0  # the process's count, over every Trainer it creates

    def __init__(self) -> None:
        self.at = parse(os.environ.get(ENV))

    def after_step(self) -> None:
        StepSignal.steps += 1
        if self.at is not None and StepSignal.steps == self.at[0]:
            os.kill(os.getpid(), self.at[1])  # a Python handler runs before the next bytecode
