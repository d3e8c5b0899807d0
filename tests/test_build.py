"""The build: CUDA kernels compiled where expected; the torch and CUDA version checks.

Installing (pip, sdist/wheel, the CMake library): test_packaging.py."""

import os

import pytest
import torch

from landmark_kernels import _extension



def test_cuda_kernels_built_when_ci_expects_them():
    """CI compiles and links the CUDA kernels on a machine without a GPU; prove it happened."""
    if os.environ.get("LK_EXPECT_CUDA_KERNELS") != "1":
        pytest.skip("set LK_EXPECT_CUDA_KERNELS=1 (CI does) to require a CUDA build")
    assert _extension.HAS_CUDA_KERNELS
    assert torch._C._dispatch_has_kernel_for_dispatch_key("landmark_kernels::awing_loss", "CUDA")


def test_cuda_version_mismatch_raises(monkeypatch):
    monkeypatch.setattr(_extension, "HAS_CUDA_KERNELS", True)
    monkeypatch.setattr(_extension, "CUDA_VERSION", 12040)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    with pytest.raises(RuntimeError, match="built with CUDA 12.4 but this torch is built with "
                                           "CUDA 13.0"):
        _extension._check_cuda_version()
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    _extension._check_cuda_version()


def test_torch_version_recorded_and_checked(monkeypatch):
    """The extension records the torch it was compiled against; another torch is refused."""
    assert torch.__version__.startswith(_extension.TORCH_VERSION)
    _extension._check_torch_version()
    monkeypatch.setattr(_extension, "TORCH_VERSION", "2.13.0")
    with pytest.raises(RuntimeError, match=r"built against torch 2\.13\.0 but this is torch "
                                           r"\S+: rebuild it against this torch"):
        _extension._check_torch_version()
