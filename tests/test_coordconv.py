"""lk.nn.CoordConv: AWing's AddCoords channels, then a convolution."""

import pytest
import torch

import landmark_kernels as lk


def test_coordinate_channels():
    m = lk.nn.CoordConv(3, 4, kernel_size=1, with_r=True)
    x = torch.rand(2, 3, 5, 7)
    out = m.add_coords(x)
    assert out.shape == (2, 6, 5, 7) and torch.equal(out[:, :3], x)
    xx, yy, rr = out[0, 3], out[0, 4], out[0, 5]
    assert xx[0, 0] == -1 and xx[0, -1] == 1 and (xx[:, 3].abs() < 1e-6).all()  # x along W
    assert yy[0, 0] == -1 and yy[-1, 0] == 1 and (yy[2].abs() < 1e-6).all()  # y along H
    torch.testing.assert_close(rr, torch.sqrt(xx ** 2 + yy ** 2))
    assert m(x).shape == (2, 4, 5, 7)


def test_boundary_masked_coordinates():
    m = lk.nn.CoordConv(1, 2, kernel_size=3, padding=1, with_boundary=True,
                        boundary_threshold=0.5)
    x = torch.rand(1, 1, 4, 4)
    boundary = torch.zeros(1, 1, 4, 4)
    boundary[0, 0, 1, 2] = 0.9
    boundary[0, 0, 3, 3] = 0.5  # not above the threshold
    out = m.add_coords(x, boundary)
    assert out.shape == (1, 5, 4, 4)
    keep = boundary[0, 0] > 0.5
    assert torch.equal(out[0, 3], torch.where(keep, out[0, 1], 0.0))
    assert torch.equal(out[0, 4], torch.where(keep, out[0, 2], 0.0))
    assert out[0, 3, 1, 2] != 0
    assert m(x, boundary).shape == (1, 2, 4, 4)
    with pytest.raises(ValueError, match="boundary must be"):
        m(x)


def test_gradient_and_bad_input():
    m = lk.nn.CoordConv(2, 3, kernel_size=1)
    x = torch.rand(1, 2, 1, 3, requires_grad=True)  # a single row: y is 0
    m(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (m.add_coords(x)[0, 3] == 0).all()
    with pytest.raises(ValueError, match="x must be"):
        m(torch.rand(2, 3))
