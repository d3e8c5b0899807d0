"""Builds landmark_kernels._C: C++ CPU kernels always, CUDA kernels when torch and nvcc allow.

Environment switches:
  LK_BUILD_CUDA=0   CPU-only build (fast rebuilds); =1 requires the CUDA kernels; unset: auto
                    (built whenever torch is a CUDA build and nvcc is found, GPU or not).
  TORCH_CUDA_ARCH_LIST  as in PyTorch; with no GPU visible it defaults to "8.0;9.0+PTX".
  MAX_JOBS          parallel compile jobs (ninja).
"""

import glob
import os
import shutil

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _find_cuda_home():
    """CUDA_HOME if set, else the toolkit that holds nvcc (PATH, then /usr/local/cuda)."""
    if os.environ.get("CUDA_HOME"):
        return os.environ["CUDA_HOME"]
    nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    return os.path.dirname(os.path.dirname(os.path.realpath(nvcc))) if os.path.exists(nvcc) else None


# torch.utils.cpp_extension reads CUDA_HOME at import time; without it, it may guess wrongly.
if _find_cuda_home():
    os.environ.setdefault("CUDA_HOME", _find_cuda_home())

import torch  # noqa: E402
from torch.utils.cpp_extension import (  # noqa: E402
    CUDA_HOME, BuildExtension, CppExtension, CUDAExtension)


def _want_cuda():
    switch = os.environ.get("LK_BUILD_CUDA", "auto").lower()
    possible = torch.version.cuda is not None and CUDA_HOME is not None and os.path.exists(
        os.path.join(CUDA_HOME, "bin", "nvcc"))
    if switch in ("0", "off", "false"):
        return False
    if switch in ("1", "on", "true") and not possible:
        raise RuntimeError("LK_BUILD_CUDA=1 but torch is not a CUDA build or nvcc was not found "
                           f"(torch.version.cuda={torch.version.cuda}, CUDA_HOME={CUDA_HOME})")
    return possible


def _pip_cuda_includes():
    """Headers of the nvidia-* wheels next to torch (cusparse.h, cublas_v2.h, ...)."""
    try:
        import nvidia
    except ImportError:
        return []
    return sorted(d for root in nvidia.__path__ for d in glob.glob(os.path.join(root, "*", "include")))


def _extension():
    cpp_sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    openmp = ["-fopenmp"] if torch.backends.openmp.is_available() else []
    # -fno-trapping-math lets the compiler if-convert, hence vectorise, the branch-free CPU
    # loops (csrc/cpu/vec_math.h); no code here reads floating-point exception flags.
    # The C++ standard is the one torch requires.
    cxx = ["-O3", "-fno-trapping-math"] + openmp
    if not _want_cuda():
        return CppExtension("landmark_kernels._C", cpp_sources,
                            extra_compile_args={"cxx": cxx}, extra_link_args=openmp)
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;9.0+PTX"
    return CUDAExtension(
        "landmark_kernels._C", cpp_sources + sorted(glob.glob("csrc/cuda/*.cu")),
        include_dirs=_pip_cuda_includes(),
        define_macros=[("LK_WITH_CUDA", None)],
        extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "-lineinfo"]},
        extra_link_args=openmp)


setup(
    name="landmark-kernels",
    version="0.1.0",
    description="Fused CUDA/C++ and Triton kernels for facial-landmark losses",
    packages=["landmark_kernels", "triton_kernels"],
    python_requires=">=3.10",
    install_requires=["torch>=2.6", "numpy"],
    ext_modules=[_extension()],
    cmdclass={"build_ext": BuildExtension},
    zip_safe=False,
)
