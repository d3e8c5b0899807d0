"""The build: CUDA kernels compiled where expected, version check, the CMake libtorch library."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from landmark_kernels import _extension

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def _cmake_args():
    """find_package(Torch) of a CUDA torch must find a CUDA toolkit and nvrtc even for a CPU-only
    library; the pip wheels next to torch provide nvrtc."""
    args = [f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"]
    if torch.version.cuda is not None:
        cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
        args += [f"-DCUDA_TOOLKIT_ROOT_DIR={cuda_home}", f"-DCUDAToolkit_ROOT={cuda_home}"]
        try:
            import nvidia
            for root in nvidia.__path__:
                for sub in ("cu13/lib", "cuda_nvrtc/lib"):
                    lib = os.path.join(root, sub)
                    nvrtc = [f for f in os.listdir(lib) if f.startswith("libnvrtc.so")] \
                        if os.path.isdir(lib) else []
                    if nvrtc:
                        args.append(f"-DCUDA_nvrtc_LIBRARY={os.path.join(lib, sorted(nvrtc)[0])}")
        except ImportError:
            pass
    return args


@pytest.fixture(scope="session")
def cmake_library():
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    build = os.path.join(ROOT, "cmake-build")
    subprocess.run(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release"]
                   + _cmake_args(), check=True, capture_output=True)
    subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count() or 2)], check=True,
                   capture_output=True)
    return os.path.join(build, "liblandmark_kernels.so")


def test_cmake_library_runs_an_op(cmake_library):
    """A libtorch user's view: load the CMake-built library alone and run the CPU AWing kernel
    (SPEC §1: pred=1, y=0 → 8.495946). A fresh process, since landmark_kernels._C already holds
    the same op registrations in this one."""
    script = textwrap.dedent(f"""
        import torch
        torch.ops.load_library({cmake_library!r})
        pred, target = torch.ones(1, 2, 3, 4), torch.zeros(1, 2, 3, 4)
        loss, grad = torch.ops.landmark_kernels.awing_loss(
            pred, target, None, 2.1, 14.0, 1.0, 0.5, 0.0, 0.2, 3, 1, True)
        print(round(loss.item(), 5), tuple(grad.shape))
    """)
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out == ["8.49595", "(1,", "2,", "3,", "4)"]
