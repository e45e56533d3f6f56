"""The whole training step as one graph: Dynamo traces forward, gradients, clipping, the SGD
update and the EMA without a graph break, and the step computes what the eager `TrainStep`
does (compiled here with the aot_eager backend, which checks the traced graph without
inductor's code generation)."""

from __future__ import annotations

import pytest
import torch

from resattn import create_model
from resattn.engine.ema import ModelEMA
from resattn.engine.graph_step import GraphStep, supports
from resattn.engine.loop import TrainStep
from resattn.engine.optim import build_optimizer

CPU = torch.device("cpu")


def parts(seed: int = 0, ema: bool = True):
    """attention_test in float64: a tiny random network on random images is ill-conditioned
    (a 1e-8 change of its weights moves some gradients by 2%), so the two steps' different
    rounding is compared where it stays small (1e-9 after three steps; a wrong update, e.g.
    momentum without Nesterov, differs by 1e-3)."""
    torch.manual_seed(seed)
    model = create_model("attention_test", num_classes=10).double().train()
    # two groups (decayed weights, undecayed BN and biases), a body at half the head's lr
    opt = build_optimizer(model, "sgd", 0.05, 5e-4, momentum=0.9, body_lr_scale=0.5)
    return model, opt, (ModelEMA(model, 0.99) if ema else None)


def batches(n: int = 3):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 3, 32, 32, generator=g, dtype=torch.float64),
             torch.randint(0, 10, (8,), generator=g)) for _ in range(n)]


@pytest.mark.slow  # Dynamo traces the whole network, its gradients and the update (~50 s)
def test_the_step_is_one_graph_without_breaks():
    import torch._dynamo

    model, opt, ema = parts()
    step = GraphStep(model, opt, CPU, ema=ema, grad_clip=1.0, compile=lambda fn: fn)
    x, y = batches(1)[0]
    lrs = torch.tensor([0.1, 0.05, 0.05, 0.1], dtype=torch.float64)
    explanation = torch._dynamo.explain(step.step)(x, y, lrs, torch.tensor(0.5))
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, \
        explanation.break_reasons


def run_both(compile, clip: float, smoothing: float):
    """Three steps at changing learning rates of TrainStep (torch.optim.SGD) and GraphStep
    from the same start; returns both sides' (model, optimizer, EMA) and the two losses."""
    eager_model, eager_opt, eager_ema = parts()
    model, _, _ = parts()
    opt = build_optimizer(model, "sgd", 0.05, 5e-4, momentum=0.9, body_lr_scale=0.5)
    ema = ModelEMA(model, 0.99)
    eager = TrainStep(eager_model, eager_opt, CPU, ema=eager_ema, grad_clip=clip,
                      label_smoothing=smoothing)
    graph = GraphStep(model, opt, CPU, ema=ema, grad_clip=clip, label_smoothing=smoothing,
                      compile=compile)
    losses = [(eager(x, y, lr)[0].item(), graph(x, y, lr)[0].item())
              for (x, y), lr in zip(batches(), (0.05, 0.03, 0.01))]
    return (eager_model, eager_opt, eager_ema), (model, opt, ema), losses


def assert_same_training(eager, graph, losses):
    """The same losses, weights, BN statistics, EMA, momentum buffers and group learning rates
    (which the optimizer's state_dict, so a checkpoint, reads)."""
    (eager_model, eager_opt, eager_ema), (model, opt, ema) = eager, graph
    for want, got in losses:
        assert got == pytest.approx(want, rel=1e-7)
    for a, b in zip(model.state_dict().values(), eager_model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)
    for a, b in zip(ema.module.state_dict().values(), eager_ema.module.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)
    assert ema.updates == eager_ema.updates == 3
    ours, theirs = opt.state_dict()["state"], eager_opt.state_dict()["state"]
    assert ours.keys() == theirs.keys()
    for k in ours:
        torch.testing.assert_close(ours[k]["momentum_buffer"], theirs[k]["momentum_buffer"],
                                   rtol=1e-6, atol=1e-8)
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in eager_opt.param_groups]


@pytest.mark.parametrize("clip, smoothing", [(0.0, 0.0), (0.5, 0.1)])
def test_the_graph_steps_arithmetic_is_sgds(clip, smoothing):
    """The step function itself (not compiled): SGD's weight decay, Nesterov momentum, group
    learning rates, clipping, label smoothing and the EMA, as TrainStep does them."""
    assert_same_training(*run_both(lambda fn: fn, clip, smoothing))


@pytest.mark.slow  # aot_eager compiles the traced graph (2-4 minutes on 2 cores)
def test_the_compiled_graph_step_trains_as_the_eager_step():
    """Compiled (aot_eager: the traced forward-backward-update graph, run by PyTorch's own
    kernels), the step trains as the eager one does."""
    compile = lambda fn: torch.compile(fn, backend="aot_eager", fullgraph=True)  # noqa: E731
    assert_same_training(*run_both(compile, 0.5, 0.1))


def test_what_cannot_be_one_graph_is_said():
    model, opt, _ = parts(ema=False)
    assert supports(opt, "bf16", distributed=False)
    assert not supports(opt, "fp16", distributed=False)  # loss scaling skips steps on the host
    assert not supports(opt, "off", distributed=True)  # DDP reduces in backward() hooks
    adam = build_optimizer(model, "adam", 1e-3, 0.0)
    assert not supports(adam, "off", distributed=False)
