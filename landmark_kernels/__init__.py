"""landmark-kernels: fused CUDA/C++ and Triton kernels for facial-landmark training losses.

Every op takes `backend="auto" | "cuda" | "triton" | "cpu" | "torch"`; see
`available_backends(device)` and landmark_kernels/_backends.py for the rule behind "auto".
"""

from . import _extension  # noqa: F401  (loads the compiled ops first)
from . import metrics, nn, reference
from ._backends import BACKENDS, available_backends
from .awing import awing_loss
from .awing_coords import awing_loss_from_coords
from .coord_losses import acr_loss, soft_wing_loss, wing_loss
from .graph import LandmarkGraph
from .graph_aggregate import graph_relational_aggregate
from .heatmaps import decode_heatmaps, render_gaussian_heatmaps
from .pfld import pfld_loss
from .relative_location import relative_location_loss
from .shape_model import ShapeModel, acr_variance_schedule

__all__ = ["BACKENDS", "LandmarkGraph", "ShapeModel", "acr_loss", "acr_variance_schedule",
           "available_backends", "awing_loss", "awing_loss_from_coords", "decode_heatmaps",
           "graph_relational_aggregate", "metrics", "nn", "pfld_loss", "reference",
           "relative_location_loss", "render_gaussian_heatmaps", "soft_wing_loss", "wing_loss"]
__version__ = "0.1.0"
