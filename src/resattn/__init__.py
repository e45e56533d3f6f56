"""resattn: Residual Attention Networks (Wang et al., CVPR 2017) in PyTorch."""

from .models import create_model, inference_model, list_models

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "inference_model", "list_models"]
