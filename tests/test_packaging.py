"""The project installs as users install it (CI step 2: `bash scripts/test.sh -m packaging`).

The checks build from the sdist of a copy of the project, unpacked, in new environments that
see this interpreter's packages (torch, setuptools, pip, build, wheel) but not its
landmark_kernels. Builds are CPU-only (LK_BUILD_CUDA=0, LK_WITH_CUDA=OFF): the main build (CI
step 1) compiles the CUDA kernels, with the same setup.py. Deselected from the default run
(pyproject.toml): minutes of compiling.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile

import pytest
import torch

pytestmark = pytest.mark.packaging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Not the project's sources: build outputs, environments, caches, bench results.
_NOT_SOURCE = {".git", "build", "cmake-build", "dist", "gpu-check", ".pytest_cache",
               "__pycache__", ".benchmarks", "results"}
# pred = 1, target = 0 (SPEC §1, mean): what every install below must compute.
_SPEC_VALUE = 8.495946
_RUN_LOSS = textwrap.dedent("""
    import os, sys, torch
    import landmark_kernels as lk
    from landmark_kernels.triton_kernels import awing_loss as triton_module
    pred, target = torch.ones(1, 2, 3, 4, requires_grad=True), torch.zeros(1, 2, 3, 4)
    losses = [lk.awing_loss(pred, target, backend=b).item() for b in lk.available_backends("cpu")]
    print(lk.__file__, triton_module.__file__, *losses)
""")


def _copy_source(dst):
    """The project's files (what git tracks or would), without build outputs or environments."""
    def ignore(folder, names):
        return {n for n in names if n in _NOT_SOURCE or n.endswith((".so", ".egg-info")) or
                os.path.exists(os.path.join(folder, n, "pyvenv.cfg"))}
    shutil.copytree(ROOT, dst, ignore=ignore)
    return str(dst)


def _run(cmd, *, cwd, env=None, timeout=1200):
    """Runs cmd (a list, or a string for bash); the failure message carries its output."""
    full_env = {**os.environ, "LK_BUILD_CUDA": "0", "MAX_JOBS": str(os.cpu_count() or 2),
                **(env or {})}
    args = ["bash", "-euo", "pipefail", "-c", cmd] if isinstance(cmd, str) else cmd
    out = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out.stdout


_OURS = ("landmark_kernels", "landmark-kernels", "__editable__", "__pycache__")


def _is_wheel(name):
    return name == "wheel" or name.startswith("wheel-")


def _link_packages(dst, wanted):
    """A folder of links to this interpreter's installed packages whose name passes wanted (the
    first on sys.path wins, as in imports)."""
    os.makedirs(dst, exist_ok=True)
    for folder in sys.path:
        if not (os.path.isdir(folder) and folder.endswith(("site-packages", "dist-packages"))):
            continue
        for name in os.listdir(folder):
            link = os.path.join(dst, name)
            if wanted(name) and not name.endswith(".pth") and not os.path.lexists(link):
                os.symlink(os.path.join(folder, name), link)
    return str(dst)


class Env:
    """A new virtual environment, without pip of its own, whose .pth adds links to this
    interpreter's packages (torch, setuptools, pip, build): a second environment with the same
    torch, and none of our package. `wheel` is added or removed with set_wheel()."""

    def __init__(self, path):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
        self.path, self.python = str(path), os.path.join(path, "bin", "python")
        self.site = self.run(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             cwd=self.path).strip()
        view = _link_packages(os.path.join(path, "packages"),
                              lambda n: not n.startswith(_OURS) and not _is_wheel(n))
        with open(os.path.join(self.site, "_lk_packages.pth"), "w") as f:
            f.write(view + "\n")
        self.set_wheel(False)

    def set_wheel(self, present):
        """Makes the `wheel` package importable here, or not (and checks it)."""
        pth = os.path.join(self.site, "_lk_wheel.pth")
        if present:
            wheel = _link_packages(os.path.join(self.path, "wheel-links"), _is_wheel)
            assert os.listdir(wheel), "the `wheel` package is needed (requirements.txt)"
            with open(pth, "w") as f:
                f.write(wheel + "\n")
        elif os.path.exists(pth):
            os.remove(pth)
        found = self.run(["-c", "import importlib.util as u; print(u.find_spec('wheel') is not None)"],
                         cwd=self.path).strip()
        assert found == str(present)

    def run(self, args, *, cwd, env=None):
        return _run([self.python] + args, cwd=cwd, env=env)

    def pip_install(self, *args, cwd):
        return self.run(["-m", "pip", "install", "-q", "--no-index", "--no-deps",
                         "--no-build-isolation", *args], cwd=cwd)

    def run_loss(self, cwd):
        """(landmark_kernels file, Triton kernel file, losses of every CPU backend)."""
        out = self.run(["-c", _RUN_LOSS], cwd=cwd, env={"TRITON_INTERPRET": "1"}).split()
        return out[0], out[1], [float(x) for x in out[2:]]


def _assert_computes(env, cwd):
    lk_file, triton_file, losses = env.run_loss(cwd)
    assert losses == pytest.approx([_SPEC_VALUE] * 3, abs=1e-5)  # cpu, triton, torch
    return lk_file, triton_file


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment the project is built in and installed into, again and again: its paths
    (in the compile flags) stay the same, so setup.py's objects are reused, as in a venv."""
    return Env(tmp_path_factory.mktemp("env") / "env")


@pytest.fixture(scope="module")
def sdist(tmp_path_factory, env):
    """(the sdist of a copy of the project, that copy): `python -m build --sdist`."""
    copy = _copy_source(tmp_path_factory.mktemp("copy") / "src")
    dist = str(tmp_path_factory.mktemp("dist"))
    env.run(["-m", "build", "--sdist", "--no-isolation", "--outdir", dist, "."], cwd=copy)
    (path,) = [os.path.join(dist, f) for f in os.listdir(dist) if f.endswith(".tar.gz")]
    return path, copy


@pytest.fixture(scope="module")
def source(sdist, tmp_path_factory):
    """The unpacked sdist. Every build below starts from it, as `python -m build` builds its
    wheel from the unpacked sdist: so they prove it complete, and share their objects."""
    dst = tmp_path_factory.mktemp("sdist")
    with tarfile.open(sdist[0]) as tar:
        tar.extractall(dst, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (top,) = os.listdir(dst)
    return str(dst / top)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A neutral folder to run installed code from (the project's folder would shadow it)."""
    return str(tmp_path_factory.mktemp("run"))


def _objects(source):
    """{object file: mtime} of the persistent CPU build folder (setup.py)."""
    return {os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
            for d, _, files in os.walk(os.path.join(source, "build")) for f in files
            if f.endswith(".o")}


def test_editable_install_without_wheel(source, env, workdir):
    """`pip install -e . --no-build-isolation` where `wheel` is absent (setuptools' own
    bdist_wheel); the Triton kernels resolve as landmark_kernels.triton_kernels from the tree."""
    env.set_wheel(False)
    env.pip_install("-e", ".", cwd=source)
    lk_file, triton_file = _assert_computes(env, workdir)
    assert lk_file == os.path.join(source, "landmark_kernels", "__init__.py")
    assert triton_file == os.path.join(source, "triton_kernels", "awing_loss.py")
    assert _objects(source), "setup.py should keep its objects in build/"


def test_editable_install_with_wheel_recompiles_nothing(source, env, workdir):
    """With `wheel` present pip used to take the legacy `setup.py develop` path, which fails
    without build isolation. Also: rebuilding an unchanged tree recompiles nothing."""
    env.set_wheel(True)
    env.pip_install("-e", ".", cwd=source)  # after the previous test: nothing to compile
    before = _objects(source)
    env.pip_install("-e", ".", cwd=source)
    assert before and _objects(source) == before, "an unchanged tree was recompiled"
    _assert_computes(env, workdir)
    env.set_wheel(False)


def test_install_puts_only_our_namespace_in_site_packages(source, env, workdir):
    """`pip install . --no-build-isolation`: only landmark_kernels lands at the top level (a
    top-level triton_kernels would clash with Triton's package of that name)."""
    env.pip_install(".", cwd=source)
    lk_file, triton_file = _assert_computes(env, workdir)
    package = os.path.join(env.site, "landmark_kernels")
    assert lk_file == os.path.join(package, "__init__.py")
    assert triton_file == os.path.join(package, "triton_kernels", "awing_loss.py")
    ours = {n for n in os.listdir(env.site) if not n.startswith("_lk_")}
    assert {n for n in ours if not n.endswith(".dist-info")} == {"landmark_kernels"}


def test_sdist_carries_every_source(sdist):
    path, copy = sdist
    with tarfile.open(path) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = {os.path.relpath(os.path.join(d, f), copy)
              for top in ("csrc", "cmake", "triton_kernels", "landmark_kernels", "tests", "bench",
                          "scripts", "docs", "examples")
              for d, _, files in os.walk(os.path.join(copy, top)) for f in files}
    wanted |= {"CMakeLists.txt", "setup.py", "pyproject.toml", "MANIFEST.in", "LICENSE",
               "README.md", "requirements.txt"}
    assert wanted - in_sdist == set(), "files missing from the sdist"


def test_wheel_from_the_sdist_installs_elsewhere(source, env, workdir, tmp_path):
    """The wheel `python -m build --no-isolation` makes (from the unpacked sdist) installs into
    a second environment with the same torch and runs; it holds nothing but our namespace."""
    dist = str(tmp_path / "dist")
    env.run(["-m", "build", "--wheel", "--no-isolation", "--outdir", dist, "."], cwd=source)
    (wheel,) = [os.path.join(dist, f) for f in os.listdir(dist) if f.endswith(".whl")]
    with zipfile.ZipFile(wheel) as whl:
        tops = {name.split("/")[0] for name in whl.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"landmark_kernels"}

    second = Env(tmp_path / "second-env")
    second.pip_install(wheel, cwd=workdir)
    lk_file, _ = _assert_computes(second, workdir)
    assert lk_file == os.path.join(second.site, "landmark_kernels", "__init__.py")


def _recipe():
    """The build/install lines documented in CMakeLists.txt's header, verbatim."""
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        lines = [line[1:].strip() for line in f if line.startswith("#   cmake ")]
    assert len(lines) == 3, lines
    return lines


def test_cmake_recipe_and_a_downstream_project(source, workdir, tmp_path):
    # (source: the unpacked sdist, which thus carries the CMake files too)
    """The CMake recipe exactly as documented (python is this environment's), then a downstream
    project that find_package(landmark_kernels) and runs an op; Python can load the library."""
    prefix = str(tmp_path / "prefix")
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "PREFIX": prefix}
    _run(" && ".join(_recipe()), cwd=source, env=env)
    (library,) = [os.path.join(d, f) for d, _, files in os.walk(prefix) for f in files
                  if f == "liblandmark_kernels.so"]

    consumer = str(tmp_path / "consumer")
    torch_prefix = torch.utils.cmake_prefix_path
    _run(["cmake", "-S", os.path.join(source, "tests", "cmake_consumer"), "-B", consumer,
          "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_PREFIX_PATH={prefix};{torch_prefix}"],
         cwd=workdir, env=env)
    _run(["cmake", "--build", consumer, "-j"], cwd=workdir, env=env)
    loss, sizes = _run([os.path.join(consumer, "lk_consumer")], cwd=workdir).split(" ", 1)
    assert float(loss) == pytest.approx(_SPEC_VALUE, abs=1e-5)
    assert sizes.strip() == "[1, 2, 3, 4]"

    # A fresh Python without landmark_kernels._C, which holds the same registrations.
    script = textwrap.dedent(f"""
        import torch
        torch.ops.load_library({library!r})
        pred, target = torch.ones(1, 2, 3, 4), torch.zeros(1, 2, 3, 4)
        loss, grad = torch.ops.landmark_kernels.awing_loss(
            pred, target, None, 2.1, 14.0, 1.0, 0.5, 0.0, 0.2, 3, 1, True)
        print(loss.item())
    """)
    assert float(_run([sys.executable, "-c", script], cwd=workdir)) == pytest.approx(
        _SPEC_VALUE, abs=1e-5)
