"""DDP worker of tests/test_training_contract.py: run as
`python -m torch.distributed.run --nproc_per_node=2 tests/ddp_contract_worker.py OUT BACKENDS`.

For every case × reduction × backend it trains one step of the case's model wrapped in
DistributedDataParallel (gloo), each rank on its half of the batch, with the loss computed
outside the wrapped module and, separately, inside it (a module whose forward returns the
loss). The loss is scaled by world · micro_batch_scale (the DDP average of the ranks' gradients
is a mean over ranks). Rank 0 saves the parameter gradients to OUT (torch.save).
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
import training_cases as tc  # noqa: E402


class WithLoss(torch.nn.Module):
    """model and loss in one module: forward returns the (scaled) loss."""

    def __init__(self, case, model):
        super().__init__()
        self.case, self.model = case, model

    def forward(self, batch, reduction, backend, scale):
        return self.case.loss(self.model, batch, reduction, backend) * scale


def main(out, backends):
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    results = {}
    for case in tc.CASES:
        full = case.batch()
        half = tc.BATCH // world
        batch = tc.split(full, rank * half, (rank + 1) * half)
        for reduction in case.reductions:
            scale = world * tc.micro_batch_scale(reduction, half, tc.BATCH)
            for backend in (b for b in backends if tc.cheap(case, "cpu", b)):
                for where in ("outside", "inside"):
                    model = case.make_model()
                    if where == "outside":
                        ddp = torch.nn.parallel.DistributedDataParallel(model)
                        loss = case.loss(ddp, batch, reduction, backend) * scale
                    else:
                        ddp = torch.nn.parallel.DistributedDataParallel(WithLoss(case, model))
                        loss = ddp(batch, reduction, backend, scale)
                    loss.backward()
                    results[case.name, reduction, backend, where] = tc.grads(model)
    if rank == 0:
        torch.save(results, out)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","))
