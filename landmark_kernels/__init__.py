"""landmark-kernels: fused CUDA/C++ and Triton kernels for facial-landmark training losses.

Every op takes `backend="auto" | "cuda" | "triton" | "cpu" | "torch"`; see
`available_backends(device)` and landmark_kernels/_backends.py for the rule behind "auto".
"""

from . import _extension  # noqa: F401  (loads the compiled ops first)
from . import nn, reference
from ._backends import BACKENDS, available_backends
from .awing import awing_loss
from .awing_coords import awing_loss_from_coords
from .heatmaps import decode_heatmaps, render_gaussian_heatmaps

__all__ = ["BACKENDS", "available_backends", "awing_loss", "awing_loss_from_coords", "nn", "reference",
           "decode_heatmaps", "render_gaussian_heatmaps"]
__version__ = "0.1.0"
