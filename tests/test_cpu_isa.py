"""The CPU kernels' loops are compiled for AVX-512, AVX2+FMA and baseline x86-64, and the widest
one this CPU runs is picked at run time (csrc/cpu/isa.h). Only one of them runs in this process:
the others run in subprocesses capped by ATEN_CPU_CAPABILITY, and every variant must give the
same losses and gradients (up to the order of float additions inside a vector). fp32 ACR on
AVX-512 is a loop of its own (csrc/cpu/acr_avx512.h, table-driven log and exp), within 6e-7 of
the others on these inputs; both are checked against fp64 in test_acr_loss.py."""

import os
import subprocess
import sys

import pytest
import torch

# Losses and gradients of every loss whose CPU loop has per-ISA variants, for the inputs in
# argv[1], saved to argv[2]. (Inputs come from the parent: torch's own random kernels also
# depend on ATEN_CPU_CAPABILITY.)
SCRIPT = r"""
import sys, torch
import landmark_kernels as lk
calls = {
    "wing": lambda p, t, phi: lk.wing_loss(p, t, reduction="none"),
    "soft_wing": lambda p, t, phi: lk.soft_wing_loss(p, t, reduction="none"),
    "acr": lambda p, t, phi: lk.acr_loss(p, t, phi, reduction="none"),
    "awing": lambda p, t, phi: lk.awing_loss(p, t, reduction="none"),
}
out = {}
for name, (pred, target, phi) in torch.load(sys.argv[1]).items():
    pred.requires_grad_()
    loss = calls[name](pred, target, phi)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    out[name] = (loss.detach(), grad)
torch.save(out, sys.argv[2])
"""


def _inputs():
    """Per loss: (pred, target, phi) reaching every branch (both sides of ω, ω1, Δ = 1 and θ;
    δ = 0; tiny and subnormal errors)."""
    g = torch.Generator().manual_seed(0)
    inputs = {}
    for name, scale, shape in (("wing", 30.0, (4, 98, 2)), ("soft_wing", 5.0, (4, 98, 2)),
                               ("acr", 1.0, (4, 98, 2)), ("awing", 1.0, (2, 3, 16, 16))):
        target = scale * torch.rand(shape, generator=g)
        pred = target + scale / 4 * torch.randn(shape, generator=g)
        pred.view(-1)[:4] = target.view(-1)[:4] + torch.tensor([0.0, 1e-30, -1e-40, 3e-39])
        inputs[name] = (pred, target, torch.rand(shape, generator=g))
    return inputs


def _run(tmp_path, capability):
    """The script's results with the CPU capped at `capability` (None: the widest)."""
    inputs, path = tmp_path / "inputs.pt", tmp_path / f"{capability or 'native'}.pt"
    if not inputs.exists():
        torch.save(_inputs(), inputs)
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability is not None:
        env["ATEN_CPU_CAPABILITY"] = capability
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(inputs), str(path)], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return torch.load(path)


@pytest.mark.parametrize("capability", ["avx2", "default"])
def test_isa_variants_agree(tmp_path, capability):
    native, capped = _run(tmp_path, None), _run(tmp_path, capability)
    for name, (loss, grad) in native.items():
        other_loss, other_grad = capped[name]
        torch.testing.assert_close(other_loss, loss, rtol=2e-6, atol=1e-30, msg=name)
        torch.testing.assert_close(other_grad, grad, rtol=2e-6, atol=1e-30, msg=name)
