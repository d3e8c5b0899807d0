"""The compiled extension landmark_kernels._C (metadata and packages: pyproject.toml).

C++ CPU kernels always; CUDA kernels when torch is a CUDA build and a CUDA toolkit is found,
GPU or not. Install with `pip install [-e] . --no-build-isolation` (compiled against the
installed torch). Environment switches:
  LK_BUILD_CUDA=0   CPU-only build; =1 requires the CUDA kernels; unset: auto (as above).
  CUDA_HOME         the CUDA toolkit; else found from nvcc (wrappers too), /usr/local/cuda, or
                    the pip nvcc packages next to torch.
  TORCH_CUDA_ARCH_LIST  as in PyTorch; with no GPU visible it defaults to "8.0;9.0+PTX".
  MAX_JOBS          parallel compile jobs (ninja).
Objects live in build/<python>-torch<version>-<cpu|cuda>/ across runs, so ninja recompiles only
what changed, also for editable installs.
"""

import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))

try:
    import torch
except ImportError as exc:
    sys.exit("landmark-kernels compiles against the torch it will run with, so torch must be "
             "installed first and the build must see it: install torch, then "
             f"`pip install . --no-build-isolation` ({exc}).")


def _is_toolkit(root):
    """A CUDA toolkit root: nvcc and the headers it needs (a bin/nvcc wrapper has neither)."""
    return bool(root) and os.path.isfile(os.path.join(root, "bin", "nvcc")) and os.path.isfile(
        os.path.join(root, "include", "crt", "host_defines.h"))


def _nvcc_toolkit(nvcc):
    """The toolkit an nvcc on PATH belongs to. A wrapper script exec'ing the real nvcc is
    common, so nvcc is asked (its dry run prints `#$ TOP=<root>/bin/..`)."""
    root = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
    if _is_toolkit(root):
        return root
    try:
        out = subprocess.run([nvcc, "-dryrun", "-E", "-x", "cu", os.devnull],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    top = re.search(r"^#\$ TOP=(.+)$", out.stdout + out.stderr, re.MULTILINE)
    return os.path.realpath(top.group(1).strip()) if top else None


def _pip_nvcc_toolkits():
    """nvcc from the pip packages (nvidia-cuda-nvcc*) next to torch: nvidia/<pkg>/bin/nvcc."""
    try:
        import nvidia
    except ImportError:
        return []
    return sorted(os.path.dirname(os.path.dirname(p)) for root in nvidia.__path__
                  for p in glob.glob(os.path.join(root, "*", "bin", "nvcc")))


def find_cuda_home():
    """(CUDA toolkit root or None, the places looked at): CUDA_HOME or CUDA_PATH, else the
    toolkit of the nvcc on PATH, /usr/local/cuda, the pip nvcc packages. An explicit CUDA_HOME
    that is no toolkit is an error, not something to silently work around."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            if not _is_toolkit(os.environ[var]):
                sys.exit(f"{var}={os.environ[var]} is not a CUDA toolkit (no bin/nvcc and "
                         "include/crt/host_defines.h): fix it, or unset it to search.")
            return os.environ[var], [var]
    nvcc = shutil.which("nvcc")
    candidates = [(f"nvcc on PATH ({nvcc})", _nvcc_toolkit(nvcc))] if nvcc else []
    candidates += [("/usr/local/cuda", "/usr/local/cuda")]
    candidates += [(f"pip package {root}", root) for root in _pip_nvcc_toolkits()]
    tried = []
    for what, root in candidates:
        tried.append(what)
        if _is_toolkit(root):
            return root, tried
    return None, tried


def _cuda_home_for_build():
    """The toolkit to compile the CUDA kernels with, or None for a CPU-only build."""
    switch = os.environ.get("LK_BUILD_CUDA", "auto").lower()
    if switch in ("0", "off", "false"):
        return None
    if torch.version.cuda is None:
        problem = f"torch {torch.__version__} is not a CUDA build"
    else:
        cuda_home, tried = find_cuda_home()
        if cuda_home is not None:
            return cuda_home
        problem = (f"no CUDA toolkit found (tried {', '.join(tried)}); set CUDA_HOME to one "
                   f"(torch wants CUDA {torch.version.cuda})")
    if switch in ("1", "on", "true"):
        sys.exit(f"LK_BUILD_CUDA=1 but {problem}.")
    print(f"landmark-kernels: building the CPU kernels only: {problem}.", file=sys.stderr)
    return None


def _put_ninja_on_path():
    if shutil.which("ninja") is None:
        try:  # the `ninja` pip package puts its binary in a folder not always on PATH
            import ninja
            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ["PATH"]
        except ImportError:
            print("landmark-kernels: ninja not found: every build recompiles everything "
                  "(pip install ninja).", file=sys.stderr)


def _pip_cuda_includes():
    """Headers of the nvidia-* wheels next to torch (cusparse.h, cublas_v2.h, ...)."""
    try:
        import nvidia
    except ImportError:
        return []
    return sorted(d for root in nvidia.__path__ for d in glob.glob(os.path.join(root, "*", "include")))


def _extension(with_cuda):
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    # Every source by glob (relative paths, as setuptools requires), so new ops need no edit.
    cpp_sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    openmp = ["-fopenmp"] if torch.backends.openmp.is_available() else []
    # -fno-trapping-math lets the compiler if-convert, hence vectorise, the branch-free CPU
    # loops (csrc/cpu/vec_math.h); no code here reads floating-point exception flags.
    # The C++ standard is the one torch requires.
    cxx = ["-O3", "-fno-trapping-math"] + openmp
    if not with_cuda:
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


def _build_ext(with_cuda):
    """torch's BuildExtension with a persistent object folder, one per Python, torch and
    CPU/CUDA flavour. setuptools hands editable builds a new temporary folder on every run, and
    its own up-to-date test (sources vs. the .so) misses headers; here ninja, which tracks every
    header and compile flag, always decides what to recompile (nothing, when nothing changed)."""
    from torch.utils.cpp_extension import BuildExtension

    class BuildExtensionKeepObjects(BuildExtension):
        def finalize_options(self):
            super().finalize_options()
            flavour = "cuda" if with_cuda else "cpu"
            self.build_temp = os.path.join(
                ROOT, "build", f"{sys.implementation.cache_tag}-torch{torch.__version__}-{flavour}")
            self.force = True  # always run ninja (a no-op when up to date) and the link

    return BuildExtensionKeepObjects


def main():
    cuda_home = _cuda_home_for_build()
    if cuda_home is not None:
        # torch.utils.cpp_extension reads CUDA_HOME when first imported (below); its own guess
        # takes the folder above nvcc's, which is wrong for a wrapper.
        os.environ["CUDA_HOME"] = cuda_home
    _put_ninja_on_path()
    with_cuda = cuda_home is not None
    setup(ext_modules=[_extension(with_cuda)], cmdclass={"build_ext": _build_ext(with_cuda)})


if __name__ == "__main__":  # as pip and `python -m build` run it; tests import its functions
    main()
