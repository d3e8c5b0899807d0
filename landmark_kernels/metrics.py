"""Landmark metrics (docs/metrics.md): NME, failure rate, AUC of the CED curve — vectorised torch.

Conventions, explicit in every signature: the normaliser (inter-ocular by default, or
inter-pupil, or any per-image tensor), the failure threshold (0.1 by default; 0.08 is also in
use, e.g. WFLW's FR@0.08 in some papers), and the AUC's integration rule and step (Simpson,
1e-4, as PIPNet). A zero normaliser (e.g. a profile face whose eye corners coincide in 2-D)
gives NME = nan for that image, never inf; failure_rate counts a nan NME as a failure and auc
as above every threshold, as PIPNet's `nmes <= x` comparisons do.
"""

import math

import torch

# 0-based landmark indices: outer eye corners (inter-ocular) and the pupils (inter-pupil: the
# landmarks given, or the mean of each eye's contour).
LAYOUTS = {
    "300w68": dict(num_landmarks=68, outer_corners=(36, 45),
                   pupils=(tuple(range(36, 42)), tuple(range(42, 48)))),
    "wflw98": dict(num_landmarks=98, outer_corners=(60, 72), pupils=((96,), (97,))),
    "cofw29": dict(num_landmarks=29, outer_corners=(8, 9), pupils=((16,), (17,))),
}


def normaliser(target, norm="inter_ocular", layout="wflw98"):
    """Per-image distance (B,) for `norm` ("inter_ocular": outer eye corners; "inter_pupil": eye
    centres) of the 2-D landmarks target (B,N,2) in `layout` ("wflw98", "300w68", "cofw29")."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, got {layout!r}")
    spec = LAYOUTS[layout]
    if target.dim() != 3 or target.shape[1] != spec["num_landmarks"]:
        raise ValueError(f"target must be (B,{spec['num_landmarks']},D) for layout {layout!r}, "
                         f"got shape {tuple(target.shape)}")
    if norm == "inter_ocular":
        left, right = (target[:, i] for i in spec["outer_corners"])
    elif norm == "inter_pupil":
        left, right = (target[:, list(eye)].mean(dim=1) for eye in spec["pupils"])
    else:
        raise ValueError(f"norm must be 'inter_ocular', 'inter_pupil' or a tensor (B,), got "
                         f"{norm!r}")
    return torch.linalg.vector_norm(left - right, dim=-1)


def nme(pred, target, norm="inter_ocular", layout="wflw98", *, mask=None):
    """Normalised mean error per image (B,): mean_n ‖p̂_n − p_n‖₂ / d.

    Args:
        pred, target: landmarks (B,N,D), D = 2 usually.
        norm: "inter_ocular" (default: outer eye corners), "inter_pupil" (eye centres), both
            from target in `layout`; or a tensor (B,) of normalisers (e.g. the bounding-box
            size), in which case layout is not used.
        layout: "wflw98" (default), "300w68" or "cofw29": which landmarks the eyes are.
        mask: None or (B,N) (bool or 0/1): the visible landmarks the mean runs over.

    Returns fp32 (fp64 for fp64 input). nan for an image whose normaliser is 0 (or that has no
    visible landmark), never inf.
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"pred and target must both be (B,N,D), got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    error = torch.linalg.vector_norm(pred.to(dtype) - target.to(dtype), dim=-1)  # (B,N)
    if mask is None:
        mean_error = error.mean(dim=1)
    else:
        if mask.shape != error.shape:
            raise ValueError(f"mask must be (B,N) = {tuple(error.shape)}, got "
                             f"{tuple(mask.shape)}")
        mask = mask.to(dtype)
        count = mask.sum(dim=1)
        mean_error = torch.where(count > 0, (error * mask).sum(dim=1) / count.clamp(min=1),
                                 math.nan)
    if isinstance(norm, torch.Tensor):
        if norm.shape != mean_error.shape:
            raise ValueError(f"norm must be (B,) = {tuple(mean_error.shape)}, got "
                             f"{tuple(norm.shape)}")
        d = norm.to(dtype)
    else:
        d = normaliser(target.to(dtype), norm, layout)
    return torch.where(d > 0, mean_error / torch.where(d > 0, d, 1.0), math.nan)


def _check_threshold(threshold):
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or \
            not 0 < threshold < math.inf:
        raise ValueError(f"threshold must be a number > 0, got {threshold!r}")


def failure_rate(nmes, threshold=0.1):
    """Fraction of images with NME > threshold (0.1 by default; 0.08 is also in use); a nan
    NME counts as a failure. Returns a 0-dim tensor (0 for no images)."""
    _check_threshold(threshold)
    if nmes.numel() == 0:
        return nmes.new_zeros(())
    return (~(nmes <= threshold)).to(nmes.dtype).mean()


def _simpson(y, step):
    """Composite Simpson's rule on equally spaced samples y (…, K), as scipy.integrate.simpson:
    for an odd number of intervals the last one gets Cartwright's correction (scipy ≥ 1.11)."""
    intervals = y.shape[-1] - 1
    if intervals < 2:
        return (y[..., :-1] + y[..., 1:]).sum(-1) * step / 2  # one interval: trapezoid
    even = intervals - intervals % 2
    body = y[..., 0:even - 1:2] + 4 * y[..., 1:even:2] + y[..., 2:even + 1:2]
    total = body.sum(-1) * step / 3
    if intervals % 2:
        total = total + step * (5 * y[..., -1] + 8 * y[..., -2] - y[..., -3]) / 12
    return total


def auc(nmes, threshold=0.1, step=1e-4, rule="simpson"):
    """Area under the CED curve on [0, threshold], divided by threshold (so 1 is perfect).

    The CED is sampled at x = 0, step, 2·step, …, threshold: the fraction of images with
    NME ≤ x; rule "simpson" (default, as PIPNet: scipy's simps over those samples) or
    "trapezoid". threshold/step must be a whole number (within 1e-6). nan NMEs never count as
    ≤ x. Returns a 0-dim tensor (0 for no images).
    """
    _check_threshold(threshold)
    if not isinstance(step, (int, float)) or not 0 < step <= threshold:
        raise ValueError(f"step must be a number in (0, threshold], got {step!r}")
    intervals = round(threshold / step)
    if abs(intervals * step - threshold) > 1e-6 * threshold:
        raise ValueError(f"threshold / step must be a whole number, got {threshold} / {step}")
    if rule not in ("simpson", "trapezoid"):
        raise ValueError(f"rule must be 'simpson' or 'trapezoid', got {rule!r}")
    if nmes.numel() == 0:
        return nmes.new_zeros(())
    dtype = torch.float64 if nmes.dtype == torch.float64 else torch.float32
    # The x's in the NMEs' dtype, so that an NME equal to a sample point (0.05 in fp32) counts.
    xs = (torch.arange(intervals + 1, device=nmes.device, dtype=torch.float64) * step).to(
        nmes.dtype)
    # Count of NMEs ≤ x for every x at once: sorted NMEs, binary search (nan as +inf: never ≤ x).
    sorted_nmes = torch.sort(nmes.reshape(-1).nan_to_num(nan=math.inf)).values
    ced = torch.searchsorted(sorted_nmes, xs, right=True).double() / nmes.numel()
    area = _simpson(ced, step) if rule == "simpson" else \
        ((ced[:-1] + ced[1:]) * step / 2).sum()
    return (area / threshold).to(dtype)
