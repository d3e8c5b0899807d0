"""The shape model behind ACR's Φ (docs/coordinate_losses.md): PCA of training shapes,
Smooth-Faces, Φ.

The official ACR code recomputes Φ on the CPU from files on disk for every batch; here `fit`
runs once on the device (torch.linalg) and `phi` is a few batched matrix products on the
device with no host synchronisation, so it can run inside the training step.
"""

import numbers

import torch

# Fard & Mahoor 2022: the shape model keeps more variance as training goes on.
_SCHEDULE = ((15, 0.80), (30, 0.85), (70, 0.90), (100, 0.95))


def acr_variance_schedule(epoch):
    """Fraction of the shape variance ACR's Smooth-Face keeps at `epoch` (0-based integer):
    epochs 0–15 → 0.80, 16–30 → 0.85, 31–70 → 0.90, 71–100 → 0.95, 101+ → 0.97."""
    if not isinstance(epoch, numbers.Integral) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
    for last, variance in _SCHEDULE:
        if epoch <= last:
            return variance
    return 0.97


class ShapeModel:
    """Mean shape and PCA of training shapes (S,N,D), D = 2 usually.

    Attributes: mean (N,D); components (N·D, N·D), the eigenvectors as columns by decreasing
    eigenvalue; eigenvalues (N·D,), the variances (≥ 0) along them. All on the device and in
    the dtype of the shapes given to `fit` (computed in fp64).
    """

    def __init__(self, mean, components, eigenvalues):
        self.mean, self.components, self.eigenvalues = mean, components, eigenvalues

    @classmethod
    def fit(cls, shapes):
        """Fit to training shapes (S,N,D), S ≥ 2: mean + eigen-decomposition of the covariance."""
        if not isinstance(shapes, torch.Tensor) or shapes.dim() != 3 or \
                not shapes.is_floating_point():
            raise ValueError(f"shapes must be a floating tensor (S,N,D), got "
                             f"{getattr(shapes, 'shape', type(shapes).__name__)}")
        if shapes.shape[0] < 2:
            raise ValueError(f"shapes must hold at least 2 shapes to fit a model, got "
                             f"{shapes.shape[0]}")
        x = shapes.reshape(shapes.shape[0], -1).double()
        mean = x.mean(dim=0)
        centred = x - mean
        covariance = centred.T @ centred / (x.shape[0] - 1)
        eigenvalues, components = torch.linalg.eigh(covariance)  # ascending
        eigenvalues = eigenvalues.flip(0).clamp(min=0)  # rounding can make zeros negative
        components = components.flip(1)
        dtype = shapes.dtype
        return cls(mean.reshape(shapes.shape[1:]).to(dtype), components.to(dtype),
                   eigenvalues.to(dtype))

    def to(self, *args, **kwargs):
        """A copy on another device / dtype (the arguments of torch.Tensor.to)."""
        return ShapeModel(*(t.to(*args, **kwargs) for t in
                            (self.mean, self.components, self.eigenvalues)))

    def _kept(self, variance):
        """1.0 for the components a Smooth-Face keeps: the fewest, by decreasing eigenvalue,
        whose cumulative share of the variance reaches `variance` (a mask, no host sync)."""
        if not isinstance(variance, numbers.Real) or isinstance(variance, bool) or \
                not 0.0 < variance <= 1.0:
            raise ValueError(f"variance must be a number in (0, 1], got {variance!r}")
        share = self.eigenvalues.cumsum(0) / self.eigenvalues.sum().clamp(min=1e-30)
        before = torch.cat([share.new_zeros(1), share[:-1]])
        return (before < variance).to(self.eigenvalues.dtype)

    def smooth(self, shapes, variance=0.9):
        """Smooth-Faces (B,N,D): mean + V_k·b, b = V_kᵀ(face − mean) clipped to ±3√λ_i."""
        self._check(shapes)
        x = (shapes - self.mean).reshape(shapes.shape[0], self.components.shape[0])
        x = x.to(self.components.dtype)
        b = x @ self.components
        limit = 3.0 * self.eigenvalues.sqrt()
        b = torch.maximum(torch.minimum(b, limit), -limit) * self._kept(variance)
        return (self.mean + (b @ self.components.T).reshape(shapes.shape)).to(shapes.dtype)

    def phi(self, shapes, variance=0.9):
        """ACR's Φ (B,N,D) for faces `shapes` (B,N,D) (the targets): Δ = |face − Smooth-Face|
        per coordinate, divided by its largest value in the sample; 0 where that maximum is 0
        (a face equal to its Smooth-Face; the official code divides 0 by 0 there)."""
        delta = (shapes - self.smooth(shapes, variance)).abs()
        largest = delta.amax(dim=(1, 2), keepdim=True) if shapes.shape[0] > 0 else delta
        return torch.where(largest > 0, delta / torch.where(largest > 0, largest, 1.0), 0.0)

    def num_components(self, variance=0.9):
        """How many components a Smooth-Face keeps at `variance` (a host sync: for reporting)."""
        return int(self._kept(variance).sum().item())

    def _check(self, shapes):
        if not isinstance(shapes, torch.Tensor) or shapes.dim() != 3 or \
                shapes.shape[1:] != self.mean.shape:
            raise ValueError(f"shapes must be (B,N,D) with (N,D) = {tuple(self.mean.shape)} "
                             f"as the model, got {getattr(shapes, 'shape', type(shapes).__name__)}")
        if shapes.device != self.mean.device:
            raise ValueError(f"shapes are on {shapes.device} but the model is on "
                             f"{self.mean.device}: use model.to(device)")

    def __repr__(self):
        n, d = self.mean.shape
        return f"ShapeModel(N={n}, D={d}, device={self.mean.device}, dtype={self.mean.dtype})"
