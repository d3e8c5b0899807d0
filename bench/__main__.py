"""The benchmark table: `python -m bench [--device cpu|cuda]` (default: cuda when present).

Times are medians of fwd+bwd on this machine; every ratio compares numbers from this same run.
"""

import argparse
import platform

import torch

import landmark_kernels as lk

from . import awing_loss, awing_loss_from_coords, coord_losses, graph
from .harness import print_table

BENCHES = {"awing_loss": awing_loss, "awing_loss_from_coords": awing_loss_from_coords,
           "coord_losses": coord_losses, "graph": graph}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", choices=sorted(BENCHES), nargs="*", default=sorted(BENCHES))
    args = parser.parse_args()
    device = torch.device(args.device)
    # The Triton interpreter is a test tool, far too slow to time.
    backends = [b for b in lk.available_backends(device)
                if b != "torch" and not (b == "triton" and device.type == "cpu")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"# landmark-kernels benchmark: {device.type} ({name}), torch {torch.__version__}")
    for bench in args.only:
        print_table(bench, BENCHES[bench].run(device, backends),
                    floor=getattr(BENCHES[bench], "FLOOR", "floor (copy)"))


if __name__ == "__main__":
    main()
