"""ShapeModel, Φ and the variance schedule of ACR (docs/coordinate_losses.md)."""

import math

import pytest
import torch

import landmark_kernels as lk


def two_mode_shapes(count=500, seed=0):
    """Shapes (count, 3, 2) = mean + b1·v1 + b2·v2 with orthonormal modes, var(b1) = 4, var(b2) =
    1: the first mode holds 80 % of the variance."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]], dtype=torch.float64)
    v1 = torch.tensor([1.0, 0, 0, 0, 0, 0], dtype=torch.float64)
    v2 = torch.tensor([0, 0, 0, 1.0, 0, 0], dtype=torch.float64)
    b = torch.randn(count, 2, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(b - b.mean(0))  # centred, uncorrelated, unit norm
    b = q * math.sqrt(count - 1) * torch.tensor([2.0, 1.0], dtype=torch.float64)
    shapes = mean + (b[:, :1] * v1 + b[:, 1:] * v2).reshape(count, 3, 2)
    return shapes, mean, v1, v2


def test_fit_mean_and_pca():
    shapes, mean, v1, v2 = two_mode_shapes()
    model = lk.ShapeModel.fit(shapes)
    torch.testing.assert_close(model.mean, shapes.mean(0))
    torch.testing.assert_close(model.eigenvalues[:2], torch.tensor([4.0, 1.0],
                                                                   dtype=torch.float64))
    assert torch.all(model.eigenvalues[2:].abs() < 1e-10)
    torch.testing.assert_close(model.components[:, 0].abs(), v1)
    torch.testing.assert_close(model.components[:, 1].abs(), v2)
    eye = torch.eye(6, dtype=torch.float64)
    torch.testing.assert_close(model.components.T @ model.components, eye)
    assert model.num_components(0.8) == 1 and model.num_components(0.81) == 2
    assert model.num_components(1.0) == 2


def test_phi_from_the_smooth_face():
    """variance 0.8 keeps mode 1: the Smooth-Face misses mode 2, so Δ is |b2| on coordinate
    (1, y) only and Φ is 1 there, 0 elsewhere; with both modes the face is its own Smooth-Face
    and Φ = 0 everywhere (the official code's 0/0)."""
    shapes, *_ = two_mode_shapes()
    model = lk.ShapeModel.fit(shapes)
    faces = shapes[:4]
    phi = model.phi(faces, variance=0.8)
    expected = torch.zeros_like(faces)
    expected[:, 1, 1] = 1.0
    torch.testing.assert_close(phi, expected)
    assert torch.equal(model.phi(faces, variance=1.0), torch.zeros_like(faces))


def test_coefficients_clipped_to_three_sigma():
    shapes, mean, v1, _ = two_mode_shapes()
    model = lk.ShapeModel.fit(shapes)
    face = (model.mean.reshape(-1) + 10.0 * v1).reshape(1, 3, 2)  # b1 = 10 > 3·√4 = 6
    smooth = model.smooth(face, variance=0.8)
    torch.testing.assert_close(smooth, (model.mean.reshape(-1) + 6.0 * v1).reshape(1, 3, 2))
    phi = model.phi(face, variance=0.8)
    assert phi[0, 0, 0] == 1.0 and phi.sum() == 1.0


def test_phi_range_and_per_sample_normalisation():
    g = torch.Generator().manual_seed(1)
    shapes = torch.randn(200, 98, 2, generator=g)
    model = lk.ShapeModel.fit(shapes)
    phi = model.phi(torch.randn(8, 98, 2, generator=g), variance=0.9)
    assert phi.shape == (8, 98, 2) and phi.dtype == torch.float32
    assert torch.all((phi >= 0) & (phi <= 1))
    torch.testing.assert_close(phi.amax(dim=(1, 2)), torch.ones(8))


def test_phi_traces_without_host_sync():
    """fullgraph=True fails on any .item() or data-dependent branch: phi has none."""
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(2)
    model = lk.ShapeModel.fit(torch.randn(50, 5, 2, generator=g))
    faces = torch.randn(3, 5, 2, generator=g)
    compiled = torch.compile(lambda f: model.phi(f, 0.9), fullgraph=True)
    torch.testing.assert_close(compiled(faces), model.phi(faces, 0.9))


def test_phi_feeds_acr_loss():
    g = torch.Generator().manual_seed(3)
    model = lk.ShapeModel.fit(torch.randn(100, 10, 2, generator=g))
    target = torch.randn(4, 10, 2, generator=g)
    pred = (target + 0.5 * torch.randn(4, 10, 2, generator=g)).requires_grad_()
    loss = lk.acr_loss(pred, target, model.phi(target, lk.acr_variance_schedule(20)))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


def test_empty_batch_and_device_checks():
    model = lk.ShapeModel.fit(torch.randn(10, 4, 2))
    assert model.phi(torch.zeros(0, 4, 2)).shape == (0, 4, 2)
    with pytest.raises(ValueError, match=r"shapes must be \(B,N,D\) with \(N,D\) = \(4, 2\)"):
        model.phi(torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="variance must be a number in"):
        model.phi(torch.zeros(2, 4, 2), variance=0.0)
    with pytest.raises(ValueError, match="at least 2 shapes"):
        lk.ShapeModel.fit(torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match="shapes are on meta"):
        model.phi(torch.zeros(2, 4, 2, device="meta"))
    assert model.to(torch.float64).mean.dtype == torch.float64


@pytest.mark.parametrize("epoch,variance", [(0, 0.80), (15, 0.80), (16, 0.85), (30, 0.85),
                                            (31, 0.90), (70, 0.90), (71, 0.95), (100, 0.95),
                                            (101, 0.97), (1000, 0.97)])
def test_variance_schedule(epoch, variance):
    assert lk.acr_variance_schedule(epoch) == variance


@pytest.mark.parametrize("epoch", [-1, 1.5, True, "3"])
def test_variance_schedule_rejects(epoch):
    with pytest.raises(ValueError, match="epoch must be an integer"):
        lk.acr_variance_schedule(epoch)


def test_schedule_accepts_numpy_integers():
    np = pytest.importorskip("numpy")
    assert lk.acr_variance_schedule(np.int64(50)) == 0.90
    assert math.isclose(lk.acr_variance_schedule(np.int32(200)), 0.97)
