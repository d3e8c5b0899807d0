"""Multi-stage supervision (stacked hourglass): one target against S stages' predictions.

The native ops (awing_loss_stages, awing_loss_from_coords_stages: csrc/registration.cpp) take the
stages stacked, pred (S,B,K,H,W), and read (or render) the target once per pixel for all of
them. A stacked tensor goes in as it is; a list of S (B,K,H,W) outputs is stacked first: one
copy (read and write of S·B·K·H·W values, 8 bytes/pixel/stage in fp32) whose backward is free
(the stacked gradient is unbound into views). That copy is as much traffic as the stage's own
loss pass, so a model that writes its stages into one (S,B,K,H,W) tensor (or returns
torch.stack of them, which autograd needs anyway) saves it.
"""

import torch

from . import _validate
from ._fused import keep_grad_private

#: Stages per call (csrc/awing_loss.h kMaxStages): the CUDA kernels keep the stage weights in
#: their launch arguments.
MAX_STAGES = 16


def is_multi_stage(pred):
    """pred given as (S,B,K,H,W) or as a list/tuple of S (B,K,H,W) stage outputs."""
    return isinstance(pred, (list, tuple)) or (isinstance(pred, torch.Tensor) and pred.dim() == 5)


def stage_weights_of(count, stage_weights):
    """The S stage weights as a tuple of floats (default all 1), checked against the count."""
    if count < 1:
        raise ValueError("pred must hold at least one stage, got 0")
    if count > MAX_STAGES:
        raise ValueError(f"pred must hold at most {MAX_STAGES} stages, got {count}")
    if stage_weights is None:
        return (1.0,) * count
    if isinstance(stage_weights, torch.Tensor):
        stage_weights = stage_weights.tolist()
    if len(stage_weights) != count:
        raise ValueError(f"stage_weights must have one weight per stage ({count}), got "
                         f"{len(stage_weights)}")
    return tuple(float(_validate.finite("stage_weights", w)) for w in stage_weights)


def stacked(pred):
    """pred as one (S,B,K,H,W) tensor: a list is stacked (one copy, see the module docstring)."""
    if isinstance(pred, torch.Tensor):
        return pred
    for i, stage in enumerate(pred):
        _validate.tensor(f"pred[{i}]", stage, dim=4)
        if stage.shape != pred[0].shape or stage.dtype != pred[0].dtype \
                or stage.device != pred[0].device:
            raise ValueError(f"every stage of pred must have the shape, dtype and device of "
                             f"pred[0] {tuple(pred[0].shape)} {pred[0].dtype} "
                             f"{pred[0].device}, got pred[{i}] {tuple(stage.shape)} "
                             f"{stage.dtype} {stage.device}")
    return torch.stack(list(pred))


def split(pred, stage_weights):
    """(pred, stage, stage_weights) of a public AWing call: pred as one tensor ((S,B,K,H,W) for
    several stages, a list stacked), the (B,K,H,W) tensor whose shape every stage has, and the
    S weights (None for a single-stage pred, which takes no stage_weights)."""
    if not is_multi_stage(pred):
        if stage_weights is not None:
            raise ValueError("stage_weights needs a multi-stage pred: (S,B,K,H,W) or a list of "
                             "S (B,K,H,W)")
        _validate.tensor("pred", pred, dim=4)
        return pred, pred, None
    stage_weights = stage_weights_of(len(pred), stage_weights)
    pred = stacked(pred)
    _validate.tensor("pred", pred, dim=5)
    return pred, pred[0], stage_weights


def call_fused(name, backend, pred, inputs, stage_weights, scalars):
    """The loss of the fused op `name` — its multi-stage (`_stages`, when stage_weights is not
    None) and Triton (`_triton`) variants as asked — on pred, the target inputs and the scalar
    arguments; the dropped gradient output is kept private (see _fused.py)."""
    name += ("_stages" if stage_weights is not None else "") + \
        ("_triton" if backend == "triton" else "")
    weights = () if stage_weights is None else (list(stage_weights),)
    loss, grad = getattr(torch.ops.landmark_kernels, name)(pred, *inputs, *weights, *scalars)
    keep_grad_private(grad)
    return loss


def check_stages(pred, stage_weights):
    """The raw multi-stage op's pred (S,B,K,H,W) and stage_weights (as the C++ check_stages);
    run by the fake and Triton kernels."""
    _validate.tensor("pred", pred, dim=5)
    if not 1 <= pred.shape[0] <= MAX_STAGES:
        raise ValueError(f"pred must hold 1 to {MAX_STAGES} stages (S,B,K,H,W), got S = "
                         f"{pred.shape[0]}")
    if len(stage_weights) != pred.shape[0]:
        raise ValueError(f"stage_weights must have one weight per stage ({pred.shape[0]}), got "
                         f"{len(stage_weights)}")
    for w in stage_weights:
        _validate.finite("stage_weights", w)


def stage_sum(loss_of_stage, pred, stage_weights):
    """Σ_s stage_weights[s] · loss_of_stage(pred[s]) (weights default to 1), each stage reduced
    as a single-stage call would be, the gradient flowing to every stage; for reduction "none"
    the (S,B,K,H,W) stack of the weighted per-stage maps (the native ops' result). The
    backend="torch" path."""
    stages = list(pred)
    weights = stage_weights_of(len(stages), stage_weights)
    losses = [loss_of_stage(stage) * w for w, stage in zip(weights, stages)]
    if losses[0].dim() > 0:
        return torch.stack(losses)
    return torch.stack(losses).sum(0)
