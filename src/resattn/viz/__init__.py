"""Pictures: attention-mask overlays and training plots. The only place matplotlib is imported;
it uses the Agg backend, so no display is needed."""

import matplotlib

matplotlib.use("Agg")

from .bars import suite_chart  # noqa: E402
from .faithfulness import curves_figure  # noqa: E402
from .masks import mask_figure, mask_grid_figure, mask_maps, overlay_array  # noqa: E402
from .plots import confusion_figure, save_figure, training_curves  # noqa: E402

__all__ = ["confusion_figure", "curves_figure", "mask_figure", "mask_grid_figure", "mask_maps",
           "overlay_array", "save_figure", "suite_chart", "training_curves"]
