"""Multi-stage supervision (stacked hourglass): one target against S stages' predictions."""

import torch

from . import _validate


def is_multi_stage(pred):
    """pred given as (S,B,K,H,W) or as a list/tuple of S (B,K,H,W) stage outputs."""
    return isinstance(pred, (list, tuple)) or (isinstance(pred, torch.Tensor) and pred.dim() == 5)


def stage_sum(loss_of_stage, pred, stage_weights):
    """Σ_s stage_weights[s] · loss_of_stage(pred[s]) (weights default to 1): each stage reduced
    as a single-stage call would be, the gradient flowing to every stage."""
    stages = list(pred)
    if not stages:
        raise ValueError("pred must hold at least one stage")
    if stage_weights is None:
        stage_weights = (1.0,) * len(stages)
    if len(stage_weights) != len(stages):
        raise ValueError(f"stage_weights must have one weight per stage ({len(stages)}), got "
                         f"{len(stage_weights)}")
    weights = [_validate.finite("stage_weights", w) for w in stage_weights]
    total = None
    for w, stage in zip(weights, stages):
        loss = loss_of_stage(stage)
        loss = loss if w == 1.0 else loss * w
        total = loss if total is None else total + loss
    return total
