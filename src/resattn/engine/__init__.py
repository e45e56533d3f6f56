"""Engine: the train loop, evaluation, optimizers and schedules, EMA, checkpoints, run logging.
It takes objects (model, loaders, optimizer), never names, and raises its own exceptions."""

from .checkpoint import load_checkpoint, save_checkpoint
from .loop import evaluate, train_one_epoch
from .trainer import Diverged, Interrupted, Trainer, fit

__all__ = ["Diverged", "Interrupted", "Trainer", "evaluate", "fit", "load_checkpoint",
           "save_checkpoint", "train_one_epoch"]
