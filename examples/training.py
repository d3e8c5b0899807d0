"""The training loop shared by the examples: device and DDP set-up, data sharding, logging, and
the optional dump that tests/test_examples.py compares between single-process and DDP runs.

Single process: `python examples/train_x.py`. DDP: `torchrun --nproc_per_node=2 examples/
train_x.py` (gloo on CPU, NCCL on CUDA): every process draws the same global batch and takes
its slice (rank r of W takes rows r·B/W … (r+1)·B/W − 1), so that DDP's gradient average over
equal slices is the gradient of the whole batch under a "mean" (or "batchmean") loss.
"""

import argparse
import os
import statistics
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist


def base_parser(description):
    """The options every example takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=20, help="training steps (default 20)")
    parser.add_argument("--batch", type=int, default=8,
                        help="global batch size, split evenly across processes (default 8)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the data")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto: CUDA when available, else CPU")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                        help="parameter and activation dtype (float64 for exact comparisons)")
    parser.add_argument("--backend", default="auto",
                        help="landmark_kernels backend: auto, cuda, triton, cpu or torch")
    parser.add_argument("--dump", default=None, metavar="PATH",
                        help="save the losses, the gradients after step 1 and the final "
                             "parameters to PATH (torch.save; written by rank 0)")
    parser.add_argument("--quiet", action="store_true", help="print the summary line only")
    return parser


@dataclass
class Context:
    device: torch.device
    dtype: torch.dtype
    rank: int = 0
    world: int = 1

    @property
    def distributed(self):
        return self.world > 1


def setup(args):
    """Seed, pick the device and, under torchrun (WORLD_SIZE > 1), join the process group:
    NCCL for CUDA, gloo for CPU. Returns the Context."""
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = torch.device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if device.index >= torch.cuda.device_count():  # NCCL needs one GPU per process
            raise SystemExit(f"process {rank} would need {device} but there are "
                             f"{torch.cuda.device_count()} GPUs: start fewer processes, or "
                             "pass --device cpu (gloo)")
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if args.steps < 1:
        raise SystemExit(f"--steps must be at least 1, got {args.steps}")
    if args.batch % world:
        raise SystemExit(f"--batch {args.batch} must be divisible by the {world} processes")
    torch.manual_seed(args.seed)  # the same initial weights on every process
    return Context(device, getattr(torch, args.dtype), rank, world)


def wrap(model, ctx):
    """The model on the device, DDP-wrapped when distributed."""
    model = model.to(ctx.device, ctx.dtype)
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard(tensor, ctx):
    """This process's slice of a global batch (dim 0), on the device."""
    size = tensor.shape[0] // ctx.world
    return tensor[ctx.rank * size:(ctx.rank + 1) * size].to(ctx.device)


def global_mean(value, ctx):
    """The mean of a scalar over the processes (a float): the whole batch's value for a mean
    over equal slices."""
    value = value.detach().reshape(1).to(torch.float64)
    if ctx.distributed:
        value = value.to(ctx.device)
        dist.all_reduce(value)
        value /= ctx.world
    return value.item()


def _sync(ctx):
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)


def train(args, ctx, model, optimizer, step_fn, *, title):
    """Run args.steps steps of `step_fn(step) -> (loss, metrics dict)` (forward and loss on this
    process's slice; it must not call backward) with backward and optimizer step here. Prints
    one line per step on rank 0 (global loss, metrics, step time) and a summary; returns the
    list of global losses."""
    losses, times, grads = [], [], None
    for step in range(args.steps):
        _sync(ctx)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss, metrics = step_fn(step)
        loss.backward()
        if step == 0:
            grads = {name: p.grad.detach().cpu().clone()
                     for name, p in unwrap(model).named_parameters() if p.grad is not None}
        optimizer.step()
        _sync(ctx)
        times.append(time.perf_counter() - start)
        losses.append(global_mean(loss, ctx))
        metrics = {k: global_mean(v, ctx) for k, v in metrics.items()}
        if ctx.rank == 0 and not args.quiet:
            shown = "".join(f"  {k} {v:.4f}" for k, v in metrics.items())
            print(f"step {step + 1:4d}/{args.steps}  loss {losses[-1]:.6f}{shown}  "
                  f"time {times[-1] * 1e3:8.2f} ms", flush=True)
    if ctx.rank == 0:
        steady = times[1:] or times
        final = "".join(f", {k} {v:.4f}" for k, v in metrics.items())
        print(f"{title}: {args.steps} steps, {ctx.world} process(es) on {ctx.device}, global "
              f"batch {args.batch}: final loss {losses[-1]:.6f}{final}, median step time "
              f"{statistics.median(steady) * 1e3:.2f} ms (after the first step)", flush=True)
        if args.dump:
            params = {name: p.detach().cpu().clone()
                      for name, p in unwrap(model).named_parameters()}
            torch.save(dict(losses=losses, grads=grads, params=params, world=ctx.world),
                       args.dump)
    if ctx.distributed:
        dist.barrier()
        dist.destroy_process_group()
    return losses


def unwrap(model):
    """The module inside DDP (or the model itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) \
        else model
