"""pytest-benchmark for the cases of `python -m bench --quick`: `pytest bench --benchmark-only`
(one test per op × shape × implementation, forward+backward, or forward alone where there is no
backward). The main suite (`pytest tests`) does not collect this folder."""

import pytest
import torch

from .__main__ import OPS

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _id(case, impl):
    return f"{case.op}-{case.shape}-{impl.name}".replace(" ", "_").replace("×", "x")


PARAMS = [pytest.param(case, impl, id=_id(case, impl))
          for op in OPS for case in OPS[op](DEVICE, "quick") for impl in case.impls]


@pytest.mark.parametrize("case,impl", PARAMS)
def test_bench(benchmark, case, impl):
    def step():
        out = impl.run()
        if out is not None and out.requires_grad:
            out.backward(case.grad_out)
            for t in case.leaves:
                t.grad = None
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
    step()  # warm-up (and torch.compile's compilation)
    benchmark(step)
