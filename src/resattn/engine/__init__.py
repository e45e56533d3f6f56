"""Engine: the train loop, evaluation, optimizers and schedules, EMA, checkpoints, run logging."""

from .checkpoint import load_checkpoint, save_checkpoint
from .loop import evaluate, train_one_epoch
from .trainer import fit

__all__ = ["evaluate", "fit", "load_checkpoint", "save_checkpoint", "train_one_epoch"]
