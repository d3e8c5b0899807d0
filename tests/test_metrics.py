"""Landmark metrics (docs/metrics.md) on hand-computed cases."""

import math

import pytest
import torch

from landmark_kernels import metrics


def face(layout, num, left, right, left_idx, right_idx):
    target = torch.zeros(1, num, 2)
    target[0, left_idx] = torch.tensor(left)
    target[0, right_idx] = torch.tensor(right)
    return target


@pytest.mark.parametrize("layout,num,corners", [("wflw98", 98, (60, 72)), ("300w68", 68, (36, 45)),
                                                ("cofw29", 29, (8, 9))])
def test_nme_inter_ocular(layout, num, corners):
    target = face(layout, num, [0.0, 0.0], [10.0, 0.0], *corners)
    pred = target + torch.tensor([3.0, 4.0])  # every landmark off by 5
    assert metrics.nme(pred, target, layout=layout).item() == pytest.approx(0.5)


def test_nme_inter_pupil_300w_uses_eye_centres():
    target = torch.zeros(1, 68, 2)
    target[0, 36:42] = torch.tensor([2.0, 0.0])    # left eye contour centred at x = 2
    target[0, 36, 0] = 0.0
    target[0, 39, 0] = 4.0
    target[0, 42:48] = torch.tensor([12.0, 0.0])   # right eye centred at x = 12
    pred = target.clone()
    pred[0, 0] += torch.tensor([6.0, 8.0])         # one landmark off by 10: mean error 10/68
    nme = metrics.nme(pred, target, norm="inter_pupil", layout="300w68")
    assert nme.item() == pytest.approx(10 / 68 / 10)
    ocular = metrics.nme(pred, target, layout="300w68")  # corners 36 (x=0) and 45 (x=12)
    assert ocular.item() == pytest.approx(10 / 68 / 12)


def test_nme_inter_pupil_wflw_uses_pupil_landmarks():
    target = face("wflw98", 98, [0.0, 0.0], [10.0, 0.0], 60, 72)
    target[0, 96] = torch.tensor([2.0, 0.0])
    target[0, 97] = torch.tensor([6.0, 0.0])
    pred = target + torch.tensor([0.0, 2.0])
    assert metrics.nme(pred, target, norm="inter_pupil").item() == pytest.approx(0.5)


def test_nme_mask_and_custom_normaliser():
    target = torch.zeros(2, 3, 2)
    pred = torch.tensor([[[1.0, 0], [3.0, 0], [100.0, 0]], [[0, 0], [0, 0], [0, 0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    nme = metrics.nme(pred, target, norm=torch.tensor([2.0, 1.0]), mask=mask)
    assert nme[0].item() == pytest.approx(1.0) and math.isnan(nme[1].item())


def test_zero_normaliser_gives_nan_not_inf():
    target = face("wflw98", 98, [5.0, 5.0], [5.0, 5.0], 60, 72)  # profile: corners coincide
    nme = metrics.nme(target + 1, target)
    assert math.isnan(nme.item())
    assert metrics.failure_rate(nme).item() == 1.0  # counted as a failure
    assert metrics.auc(nme).item() == 0.0


def test_failure_rate():
    nmes = torch.tensor([0.05, 0.1, 0.15, float("nan"), 0.07])
    assert metrics.failure_rate(nmes).item() == pytest.approx(2 / 5)  # 0.1 is not > 0.1
    assert metrics.failure_rate(nmes, threshold=0.08).item() == pytest.approx(3 / 5)
    assert metrics.failure_rate(torch.zeros(0)).item() == 0.0


def test_auc_hand_computed():
    # CED sampled at 0, 0.05, 0.1: [0, 1, 1]. Simpson: (0 + 4 + 1)·0.05/3 / 0.1 = 5/6.
    nmes = torch.tensor([0.05])
    assert metrics.auc(nmes, step=0.05).item() == pytest.approx(5 / 6)
    assert metrics.auc(nmes, step=0.05, rule="trapezoid").item() == pytest.approx(0.75)
    assert metrics.auc(torch.zeros(4)).item() == pytest.approx(1.0)
    assert metrics.auc(torch.full((4,), 0.2)).item() == 0.0


def test_auc_simpson_odd_number_of_intervals():
    """3 intervals: Simpson on the first two, Cartwright's correction for the last (scipy)."""
    nmes = torch.tensor([0.05, 0.15, 0.25, 0.35])  # CED at 0, .1, .2, .3: 0, .25, .5, .75
    y = [0.0, 0.25, 0.5, 0.75]
    h = 0.1
    expected = (y[0] + 4 * y[1] + y[2]) * h / 3 + h * (5 * y[3] + 8 * y[2] - y[1]) / 12
    assert metrics.auc(nmes, threshold=0.3, step=0.1).item() == pytest.approx(expected / 0.3)


def test_auc_approaches_one_minus_mean_over_threshold():
    """For NMEs below the threshold, ∫₀ᵀ CED = T − mean(NME): AUC ≈ 1 − mean/T."""
    g = torch.Generator().manual_seed(0)
    nmes = 0.1 * torch.rand(10000, generator=g)
    assert metrics.auc(nmes).item() == pytest.approx(1 - nmes.mean().item() / 0.1, abs=2e-3)


@pytest.mark.parametrize("call,match", [
    (lambda: metrics.auc(torch.rand(3), threshold=0.1, step=0.03), "whole number"),
    (lambda: metrics.auc(torch.rand(3), rule="midpoint"), "rule must be"),
    (lambda: metrics.failure_rate(torch.rand(3), threshold=0), "threshold must be"),
    (lambda: metrics.nme(torch.rand(2, 5, 2), torch.rand(2, 5, 2)), r"target must be \(B,98,D\)"),
    (lambda: metrics.nme(torch.rand(2, 98, 2), torch.rand(2, 98, 2), norm="eyes"), "norm must"),
    (lambda: metrics.nme(torch.rand(2, 98, 2), torch.rand(2, 98, 2), layout="aflw"), "layout"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
