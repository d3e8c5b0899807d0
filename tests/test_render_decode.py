"""The Gaussian renderer and the heatmap decoder: one pixel convention, inverse of each other."""

import pytest
import torch

import landmark_kernels as lk
from landmark_kernels import reference


def random_coords(b, k, h, w, seed=0, margin=2.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(b, k, 2, generator=g, dtype=torch.float64)
    return torch.stack((margin + xy[..., 0] * (w - 1 - 2 * margin),
                        margin + xy[..., 1] * (h - 1 - 2 * margin)), dim=-1)


def test_pixel_convention():
    """Pixel (row i, column j) is centred at (x, y) = (j, i): an integer landmark peaks at 1."""
    coords = torch.tensor([[[3.0, 5.0]]])
    hm = lk.render_gaussian_heatmaps(coords, 8, 6, 1.5)
    assert hm.shape == (1, 1, 8, 6)
    assert hm[0, 0, 5, 3] == 1.0 and hm[0, 0].argmax() == 5 * 6 + 3
    assert hm[0, 0, 5, 4] == pytest.approx(torch.exp(torch.tensor(-1 / (2 * 1.5 ** 2))).item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("sigma", [2.0, "per-channel"])
def test_render_matches_reference(dtype, sigma):
    coords = random_coords(3, 5, 17, 23, margin=-3.0)  # some landmarks outside the map
    coords[0, 1] = float("nan")
    coords[1, 2, 0] = float("nan")
    if sigma == "per-channel":
        sigma = torch.tensor([0.5, 1.0, 1.5, 2.0, 3.0], dtype=torch.float64)
    hm = lk.render_gaussian_heatmaps(coords.float(), 17, 23, sigma, dtype=dtype)
    ref = reference.render_gaussian_heatmaps(coords, 17, 23, sigma)
    assert hm.dtype == dtype and hm.shape == (3, 5, 17, 23)
    tol = {torch.float64: 1e-6, torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 4e-3}
    torch.testing.assert_close(hm.double(), ref, rtol=tol[dtype], atol=tol[dtype])
    assert (hm[0, 1] == 0).all() and (hm[1, 2] == 0).all()  # missing landmarks


@pytest.mark.parametrize("refine,tol", [(None, 0.5), ("quarter", 0.25), ("dark", 2e-3)])
def test_round_trip(refine, tol):
    """render → decode returns the coordinates to sub-pixel accuracy with the same convention."""
    coords = random_coords(4, 20, 32, 48, seed=1)
    hm = lk.render_gaussian_heatmaps(coords.float(), 32, 48, 2.0)
    decoded = lk.decode_heatmaps(hm, refine=refine)
    assert decoded.shape == (4, 20, 2) and decoded.dtype == torch.float32
    err = (decoded.double() - coords).abs()
    assert err.max() <= tol + 1e-6
    if refine == "quarter":  # strictly better than the plain arg-max on average
        plain = (lk.decode_heatmaps(hm, refine=None).double() - coords).abs()
        assert err.mean() < plain.mean()


def test_integer_landmarks_decode_exactly():
    coords = torch.tensor([[[4.0, 7.0], [0.0, 0.0], [9.0, 3.0]]])
    hm = lk.render_gaussian_heatmaps(coords, 10, 10, 1.0)
    for refine in ("quarter", "dark", None):
        torch.testing.assert_close(lk.decode_heatmaps(hm, refine=refine), coords, atol=1e-4,
                                   rtol=0)


def test_decode_half_precision():
    coords = random_coords(2, 3, 16, 16)
    hm = lk.render_gaussian_heatmaps(coords.float(), 16, 16, 1.5, dtype=torch.float16)
    decoded = lk.decode_heatmaps(hm, refine="dark")
    assert decoded.dtype == torch.float32
    assert (decoded.double() - coords).abs().max() < 0.1


@pytest.mark.parametrize("call,error,match", [
    (lambda: lk.render_gaussian_heatmaps(torch.zeros(2, 3), 4, 4, 1.0), ValueError, "coords"),
    (lambda: lk.render_gaussian_heatmaps(torch.zeros(1, 2, 3), 4, 4, 1.0), ValueError, "coords"),
    (lambda: lk.render_gaussian_heatmaps(torch.zeros(1, 2, 2, dtype=torch.int64), 4, 4, 1.0),
     TypeError, "coords"),
    (lambda: lk.render_gaussian_heatmaps(torch.zeros(1, 2, 2), 0, 4, 1.0), ValueError, "height"),
    (lambda: lk.render_gaussian_heatmaps(torch.zeros(1, 2, 2), 4, 2.5, 1.0), ValueError, "width"),
    (lambda: lk.render_gaussian_heatmaps(torch.zeros(1, 2, 2), 4, 4, 0.0), ValueError, "sigma"),
    (lambda: lk.render_gaussian_heatmaps(torch.zeros(1, 2, 2), 4, 4, [1.0]), ValueError, "sigma"),
    (lambda: lk.render_gaussian_heatmaps(torch.zeros(1, 2, 2), 4, 4, torch.tensor([1.0, -1.0])),
     ValueError, "sigma"),
    (lambda: lk.decode_heatmaps(torch.zeros(2, 3, 4)), ValueError, "heatmaps"),
    (lambda: lk.decode_heatmaps(torch.zeros(1, 1, 4, 4), refine="argmax"), ValueError, "refine"),
    (lambda: lk.decode_heatmaps(torch.zeros(1, 1, 0, 4)), ValueError, "heatmaps"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
