"""Engine: the train loop, evaluation, optimizers and schedules, EMA, checkpoints, run logging.
It takes objects (model, loaders, optimizer, a plan and settings), never names or a
configuration, and raises its own exceptions."""

from .checkpoint import load_checkpoint, save_checkpoint
from .loop import evaluate, train_one_epoch
from .trainer import (
    Diverged,
    Interrupted,
    Optimization,
    Plan,
    Records,
    Settings,
    Trainer,
    place_model,
)

__all__ = ["Diverged", "Interrupted", "Optimization", "Plan", "Records", "Settings", "Trainer",
           "evaluate", "load_checkpoint", "place_model", "save_checkpoint", "train_one_epoch"]
