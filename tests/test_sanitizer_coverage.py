"""scripts/gpu_check.sh runs compute-sanitizer over the tests its -k expression selects
(SANITIZE_TESTS): that subset must exercise every CUDA op, forward and backward. Checked by
collecting it here (no GPU needed: the CUDA tests are collected, then skipped)."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every kernel in csrc/cuda, and the test files whose cuda-cuda tests run it (forward and,
# through autograd, backward: scale_grad_ is the fused losses' backward).
CUDA_OPS = {
    "awing_loss.cu": ("test_awing_loss.py",),
    "awing_loss_from_coords.cu": ("test_awing_loss_from_coords.py",),
    "coord_loss.cu": ("test_wing_loss.py", "test_soft_wing_loss.py", "test_acr_loss.py"),
    "pfld_loss.cu": ("test_pfld_loss.py",),
    "graph_aggregate.cu": ("test_graph_relational_aggregate.py",),
    "graph_laplacian.cu": ("test_relative_location_loss.py",),
    "scale_grad.cu": ("test_awing_loss.py",),
}
# Tests of each file that must be in the subset: a gradient test (forward + backward kernels).
GRADIENT_TEST = re.compile(r"::test_\w*(grad|backward|matches|reference)\w*\[")


def _sanitize_expression():
    script = open(os.path.join(ROOT, "scripts", "gpu_check.sh")).read()
    match = re.search(r'SANITIZE_TESTS="\$\{LK_SANITIZE_TESTS:-([^}]*)\}"', script)
    assert match, "SANITIZE_TESTS not found in scripts/gpu_check.sh"
    return match.group(1)


def test_every_cuda_kernel_has_a_test_file():
    kernels = {f for f in os.listdir(os.path.join(ROOT, "csrc", "cuda")) if f.endswith(".cu")}
    assert kernels == set(CUDA_OPS), "update CUDA_OPS (and the sanitizer subset) for new kernels"


def test_sanitizer_subset_covers_every_cuda_op():
    files = sorted({f for fs in CUDA_OPS.values() for f in fs})
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-k", _sanitize_expression(), *(os.path.join("tests", f) for f in files)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    selected = [line for line in out.stdout.splitlines() if "::" in line]
    for kernel, test_files in CUDA_OPS.items():
        for f in test_files:
            mine = [t for t in selected if t.startswith(f"tests/{f}::")]
            assert any("cuda-cuda" in t for t in mine), f"{kernel}: no {f} test in the subset"
            assert any(GRADIENT_TEST.search(t) for t in mine), \
                f"{kernel}: the subset runs no gradient test of {f}"
