"""examples/: each training script runs 2 steps on the CPU in one process and under
torch.distributed.run with 2 processes (gloo), and DDP's gradients equal the single process's
on the same global batch; train_heatmap's `--loss ours` and `--loss reference` curves agree.

The DDP comparison runs in float64 (--dtype float64), where the two runs differ only by the
order of the batch sums: a wrong shard, a missing all-reduce or a loss scaled by the wrong 1/N
would be off by far more than the 1e-9 tolerance.
"""

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import landmark_kernels as lk

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMALL = ["--steps", "2", "--batch", "4", "--dtype", "float64", "--device", "cpu"]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread in this process, as torchrun gives each of its processes: a busy
    2-core CPU is not oversubscribed (which can make a step many times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _load(name):
    """The example script as a module (its main(argv) runs it in this process)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(script, args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           str(EXAMPLES / script), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _assert_same_run(single, ddp):
    assert ddp["world"] == 2 and single["world"] == 1
    torch.testing.assert_close(torch.tensor(ddp["losses"]), torch.tensor(single["losses"]),
                               rtol=1e-9, atol=0)
    for what in ("grads", "params"):
        assert ddp[what].keys() == single[what].keys() and single[what]
        for name, value in single[what].items():
            assert value.dtype == torch.float64
            scale = value.abs().max().item()
            torch.testing.assert_close(ddp[what][name], value, rtol=1e-9, atol=1e-9 * scale,
                                       msg=lambda m: f"{what} of {name}: {m}")
    # The step-1 gradients are not all zero (the comparison means something).
    assert any(g.abs().max() > 0 for g in single["grads"].values())


# Two launches keep the file near a minute on 2 CPU cores (each torchrun starts 3 Pythons);
# the --target coords path runs under DDP in tests/test_training_contract.py.
@pytest.mark.parametrize("script,args", [
    ("train_heatmap", ["--landmarks", "98"]),
    ("train_graph", []),
], ids=["heatmap", "graph"])
def test_ddp_gradients_equal_single_process(script, args, tmp_path, capsys):
    single_dump, ddp_dump = tmp_path / "single.pt", tmp_path / "ddp.pt"
    losses = _load(script).main(SMALL + args + ["--dump", str(single_dump)])
    out = capsys.readouterr().out
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert "step    2/2  loss" in out and "nme" in out and "median step time" in out
    ddp_out = _torchrun(f"{script}.py", SMALL + args + ["--dump", str(ddp_dump)])
    assert "2 process(es) on cpu" in ddp_out
    assert ddp_out.count("step    2/2") == 1  # rank 0 prints, once
    _assert_same_run(torch.load(single_dump), torch.load(ddp_dump))


@pytest.mark.parametrize("target", ["heatmap", "coords"])
def test_heatmap_loss_curves_of_ours_and_the_reference_agree(target, capsys):
    """fp32, the defaults but 3 steps: the fused AWing and the eager reference train alike."""
    train = _load("train_heatmap").main
    argv = ["--steps", "3", "--target", target, "--quiet", "--device", "cpu"]
    ours = train(argv + ["--loss", "ours"])
    reference = train(argv + ["--loss", "reference"])
    assert "--loss reference" in capsys.readouterr().out
    torch.testing.assert_close(torch.tensor(ours), torch.tensor(reference), rtol=1e-4, atol=0)
    assert ours[-1] != ours[0]  # it trains


def test_synthetic_faces_match_the_metric_layouts():
    """The mean faces' eye corners are where lk.metrics looks for them, and sampled faces lie
    inside the image."""
    faces = _load("faces")
    for n, layout in faces.LAYOUT_NAMES.items():
        shape = faces.mean_shape(n)
        left, right = lk.metrics.LAYOUTS[layout]["outer_corners"]
        eyes = torch.cat([shape[list(faces.PARTS[n][e])] for e in ("eye_r", "eye_l")])
        assert shape[left, 0] == eyes[:, 0].min() and shape[right, 0] == eyes[:, 0].max()
        shapes = faces.sample_shapes(torch.Generator().manual_seed(0), 64, n, 64)
        assert shapes.min() > 0 and shapes.max() < 63
        images, again = faces.global_batch(3, 5, 2, n, 64), faces.global_batch(3, 5, 2, n, 64)
        assert torch.equal(images[0], again[0]) and images[0].shape == (2, 3, 64, 64)
