"""resattn: Residual Attention Networks (Wang et al., CVPR 2017) in PyTorch.

Models: `create_model`, `list_models`, `inference_model`. Trained models: `train`,
`load_model`, `evaluate`, `predict`, `explain`, `faithfulness`, `export`, `plot` (see
`resattn.api`).
Each name is imported on first use: `import resattn` (and `resattn --help`) stays light.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_HOMES = {"evaluate": ".api", "explain": ".api", "export": ".api", "faithfulness": ".api",
          "load_model": ".api",
          "plot": ".api", "predict": ".api", "train": ".api", "create_model": ".models",
          "inference_model": ".models", "list_models": ".models"}

__all__ = ["__version__", "create_model", "evaluate", "explain", "export", "faithfulness",
           "inference_model", "list_models", "load_model", "plot", "predict", "train"]

if TYPE_CHECKING:  # what type checkers and editors see
    from .api import evaluate, export, load_model, plot, predict, train
    from .api.explain import explain
    from .api.faithfulness import faithfulness
    from .models import create_model, inference_model, list_models


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # resattn.api, resattn.engine, ...
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later look-ups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
