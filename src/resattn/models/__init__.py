"""The Residual Attention Network family as pure `torch.nn` modules."""

from .attention import AttentionModule, AttentionOptions
from .inference import fold_batchnorm, inference_model
from .network import ArchSpec, ResidualAttentionNet, StageSpec
from .quantize import QuantizationError, quantize_int8
from .registry import create_model, get_spec, list_models
from .residual import ResidualUnit
from .stats import count_flops, count_params

__all__ = [
    "ArchSpec", "AttentionModule", "AttentionOptions", "ResidualAttentionNet", "ResidualUnit",
    "StageSpec",
    "count_flops", "count_params", "create_model", "fold_batchnorm", "get_spec",
    "inference_model", "list_models", "QuantizationError", "quantize_int8",
]
