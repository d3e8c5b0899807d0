"""Loads the compiled ops (landmark_kernels._C) and checks they match the running torch."""

import torch

try:
    from . import _C
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "landmark_kernels._C is not built: run `pip install -e . --no-build-isolation` in the "
        f"repository (LK_BUILD_CUDA=0 for a CPU-only build). Cause: {exc}") from exc

#: CUDA runtime version the CUDA kernels were built with (e.g. 13000), 0 for a CPU-only build.
CUDA_VERSION = _C.cuda_version
HAS_CUDA_KERNELS = CUDA_VERSION > 0


def _check_cuda_version():
    if not HAS_CUDA_KERNELS:
        return
    built = f"{CUDA_VERSION // 1000}.{CUDA_VERSION % 1000 // 10}"
    if torch.version.cuda is None or torch.version.cuda.split(".")[:2] != built.split("."):
        raise RuntimeError(
            f"landmark_kernels was built with CUDA {built} but this torch is built with CUDA "
            f"{torch.version.cuda}: rebuild it against this torch (pip install . "
            "--no-build-isolation), or set LK_BUILD_CUDA=0 for a CPU-only build.")


_check_cuda_version()
