"""The one timer and the one-case measurement behind `resattn bench` and the benchmarks."""

from __future__ import annotations

import pytest
import torch

from resattn import create_model
from resattn.engine.bench import Case, measure, seconds_per_call


def test_the_timer_warms_up_keeps_torch_threads_and_returns_one_call():
    """Warm-up calls come first; torch's thread count is not changed underneath the timed calls
    (torch.utils.benchmark's own default is one thread); the result is per call, not per
    block: a call that sleeps 20 ms takes about that."""
    calls, threads = [], []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        def fn():
            calls.append(1)
            threads.append(torch.get_num_threads())
        assert seconds_per_call(fn, seconds=0.0, warmup=3) > 0
        assert len(calls) >= 4 and set(threads) == {2}
    finally:
        torch.set_num_threads(before)
    import time

    assert seconds_per_call(lambda: time.sleep(0.02), seconds=0.0, warmup=0) >= 0.02


@pytest.mark.parametrize("mode", ["train", "inference"])
def test_measure_takes_a_model_and_a_case(mode):
    """A model object (not a name) and a Case: the step really trains (weights move) or only
    infers (weights stay), and the row has a rate, a first step and a peak memory."""
    torch.manual_seed(0)
    model = create_model("attention_test", num_classes=10)
    before = [p.detach().clone() for p in model.parameters()]
    row = measure(model, Case(mode, 4, 32, "cpu"), seconds=0.0, warmup=0)
    assert row["images_per_s"] > 0 and row["first_step_s"] > 0 and row["peak_memory_mb"] > 0
    moved = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert moved == (mode == "train")
