"""scripts/gpu_check.sh where no GPU is at hand: its syntax, its rule for skipped GPU tests, and
what it reports when it finds no GPU (the run on a GPU is CONTRIBUTING's job)."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "gpu_check.sh")
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import gpu_skips  # noqa: E402


def _junit(path, *cases):
    """A pytest JUnit XML file of (test name, skip reason or None) in tests/test_x.py."""
    xml = "".join(f'<testcase classname="tests.test_x" name="{name}">' +
                  (f'<skipped type="pytest.skip" message="{reason}">skip</skipped>' if reason
                   else "") + "</testcase>" for name, reason in cases)
    path.write_text(f'<testsuites><testsuite name="pytest">{xml}</testsuite></testsuites>')
    return str(path)


ALLOWED = [("test_a[cuda-cuda]", None), ("test_a[triton-cpu]",
           "triton on CPU tensors needs TRITON_INTERPRET=1 set before import"),
           ("test_e[cudagraph-cpu]", "not relevant here")]
GPU_SKIPS = [("test_a[triton-cuda]", "triton is not installed"),
             ("test_b[float16-cuda-cuda]", "something else"),
             ("test_d", "no CUDA GPU on this machine"),
             ("test_f", "set LK_EXPECT_CUDA_KERNELS=1 to require a CUDA build")]


def test_script_parses():
    subprocess.run(["bash", "-n", SCRIPT], check=True)


def test_gpu_skips_flags_cuda_tests_and_gpu_reasons(tmp_path):
    junit = _junit(tmp_path / "tests.xml", *ALLOWED, *GPU_SKIPS)
    assert gpu_skips.gpu_skips(junit) == [(f"tests.test_x::{name}", reason)
                                          for name, reason in GPU_SKIPS]
    assert gpu_skips.main(["gpu_skips.py", junit]) == 1


def test_gpu_skips_passes_a_clean_run(tmp_path):
    assert gpu_skips.main(["gpu_skips.py", _junit(tmp_path / "tests.xml", *ALLOWED)]) == 0


def test_without_gpu_reports_and_exits_2(tmp_path):
    """No GPU visible: exit status 2 and a summary saying nothing was verified, quickly (no
    build); python3 is this interpreter, as on a GPU machine it is the machine's own."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    out = subprocess.run(["bash", SCRIPT, str(tmp_path / "check")], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stdout + out.stderr
    summary = (tmp_path / "check" / "summary.txt").read_text()
    assert "device:   none visible" in summary
    assert "FAIL" in summary and "no CUDA GPU visible: nothing verified" in summary
    assert out.stdout == summary
    assert not (tmp_path / "check" / "build.log").exists()


def test_without_torch_says_so(tmp_path):
    """A python3 that cannot import torch: exit status 1, and the summary names the cause."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").symlink_to(shutil.which("false"))
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", SCRIPT, str(tmp_path / "check")], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "cannot import torch" in out.stdout
