"""The build: CUDA kernels compiled where expected; the torch and CUDA version checks.

Installing (pip, sdist/wheel, the CMake library): test_packaging.py."""

import importlib.util
import os
import shutil

import pytest
import torch

from landmark_kernels import _extension

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup_py():
    """setup.py as a module: its functions, without running setup()."""
    spec = importlib.util.spec_from_file_location("lk_setup", os.path.join(ROOT, "setup.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module



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


def test_cuda_home_found_through_an_nvcc_wrapper(tmp_path, monkeypatch):
    """nvcc on PATH is often a script exec'ing the real one: the toolkit is the real nvcc's, not
    the folder above the wrapper (whose include/ lacks crt/host_defines.h)."""
    setup_py = _setup_py()
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    toolkit, _ = setup_py.find_cuda_home()
    if toolkit is None:
        pytest.skip("no CUDA toolkit on this machine")
    wrapper = tmp_path / "bin" / "nvcc"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {toolkit}/bin/nvcc "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    assert shutil.which("nvcc") == str(wrapper)
    found, tried = setup_py.find_cuda_home()
    assert os.path.realpath(found) == os.path.realpath(toolkit)
    assert tried == [f"nvcc on PATH ({wrapper})"]


def test_cuda_home_that_is_no_toolkit_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    with pytest.raises(SystemExit, match="is not a CUDA toolkit"):
        _setup_py().find_cuda_home()


def test_package_imports_its_own_triton_kernels():
    """Installed, the Triton kernels are `landmark_kernels.triton_kernels`: a top-level
    `triton_kernels` exists only where the repository root is on sys.path (as under pytest), so
    package code that imported it would break only for users."""
    import ast
    import glob
    for path in glob.glob(os.path.join(ROOT, "landmark_kernels", "*.py")):
        for node in ast.walk(ast.parse(open(path).read())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 \
                else []
            assert not [n for n in names if n.split(".")[0] == "triton_kernels"], path
