"""The interruption tests' hook: a signal to the process right after its N-th training step."""

from __future__ import annotations

import signal

import pytest

from resattn.engine import stop_hook
from resattn.engine.stop_hook import ENV, StepSignal, parse
from resattn.errors import UserError


def test_parse_reads_step_and_signal():
    assert parse("12:SIGINT") == (12, signal.SIGINT)
    assert parse("1:SIGKILL") == (1, signal.SIGKILL)
    assert parse(None) is None and parse("") is None


@pytest.mark.parametrize("value", ["0:SIGINT", "x:SIGINT", "3", "3:SIGHUP", "-1:SIGTERM"])
def test_a_bad_value_is_a_one_line_user_error(value):
    with pytest.raises(UserError, match=f"{ENV}='{value}' is not valid"):
        parse(value)


def test_the_signal_comes_right_after_the_chosen_step_counted_over_the_process(monkeypatch):
    received = []
    old = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(StepSignal.steps))
    try:
        monkeypatch.setattr(StepSignal, "steps", 0)
        monkeypatch.setenv(ENV, "5:SIGTERM")
        first, second = StepSignal(), StepSignal()  # two runs of one process (a suite)
        for _ in range(3):
            first.after_step()
        assert received == []
        for _ in range(4):
            second.after_step()
        assert received == [5]  # once, after the fifth step of the process
        monkeypatch.delenv(ENV)
        StepSignal().after_step()
        assert received == [5] and stop_hook.StepSignal.steps == 8
    finally:
        signal.signal(signal.SIGTERM, old)
