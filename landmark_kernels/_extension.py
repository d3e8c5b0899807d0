"""Loads the compiled ops (landmark_kernels._C) and checks they match the running torch."""

import re

import torch

_REBUILD = ("rebuild it against this torch: `pip install -e . --no-build-isolation` in the "
            "repository, or `pip install --no-build-isolation --force-reinstall "
            "--no-deps landmark-kernels`")

try:
    from . import _C
except ImportError as exc:  # pragma: no cover - only on a broken install
    if "undefined symbol" in str(exc):  # the usual symptom of another torch's ABI
        raise ImportError(f"landmark_kernels._C does not fit torch {torch.__version__} (was it "
                          f"built against another torch?): {_REBUILD}. Cause: {exc}") from exc
    raise ImportError(
        "landmark_kernels._C is not built: run `pip install -e . --no-build-isolation` in the "
        f"repository (LK_BUILD_CUDA=0 for a CPU-only build). Cause: {exc}") from exc

#: torch version whose headers the extension was compiled against (e.g. "2.14.1").
TORCH_VERSION = _C.torch_version
#: CUDA runtime version the CUDA kernels were built with (e.g. 13000), 0 for a CPU-only build.
CUDA_VERSION = _C.cuda_version
HAS_CUDA_KERNELS = CUDA_VERSION > 0


def _check_torch_version():
    # C++ extensions have no stable ABI across torch releases: a mismatch crashes or corrupts
    # silently, so refuse it here. The release is compared (the headers carry no more); the CUDA
    # flavour (+cu130, +cpu) is _check_cuda_version's.
    if re.match(r"\d+\.\d+\.\d+", torch.__version__).group() != TORCH_VERSION:
        raise RuntimeError(f"landmark_kernels was built against torch {TORCH_VERSION} but this is "
                           f"torch {torch.__version__}: {_REBUILD}.")


def _check_cuda_version():
    if not HAS_CUDA_KERNELS:
        return
    built = f"{CUDA_VERSION // 1000}.{CUDA_VERSION % 1000 // 10}"
    if torch.version.cuda is None or torch.version.cuda.split(".")[:2] != built.split("."):
        raise RuntimeError(
            f"landmark_kernels was built with CUDA {built} but this torch is built with CUDA "
            f"{torch.version.cuda}: {_REBUILD} (or set LK_BUILD_CUDA=0 for a CPU-only build).")


_check_torch_version()
_check_cuda_version()
