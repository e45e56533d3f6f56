"""resattn: Residual Attention Networks (Wang et al., CVPR 2017) in PyTorch."""

from .models import create_model, inference_model, list_models

__version__ = "0.1.0"


def train(recipe: str | None = None, config: str | None = None, progress: bool = True,
          **overrides):
    """Train one run from Python, exactly as `resattn train` does.

    `recipe` ('paper', 'fast'), `config` (a TOML file) and keyword overrides (any configuration
    key: model, data_dir, epochs, train_subset, ...) layer as on the command line.
    Returns (summary dict, run directory).
    """
    from .cli.train import train_config
    from .config import resolve

    return train_config(resolve(recipe, config, overrides), progress=progress)

__all__ = ["__version__", "create_model", "inference_model", "list_models", "train"]
