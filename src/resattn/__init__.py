"""resattn: Residual Attention Networks (Wang et al., CVPR 2017) in PyTorch.

Models: `create_model`, `list_models`, `inference_model`. Trained models: `train`,
`load_model`, `evaluate`, `predict`, `explain`, `export`, `plot` (see `resattn.api`).
"""

from .api import evaluate, explain, export, load_model, plot, predict, train
from .models import create_model, inference_model, list_models

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "evaluate", "explain", "export",
           "inference_model", "list_models", "load_model", "plot", "predict", "train"]
