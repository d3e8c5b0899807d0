"""Which skipped tests should have run on a GPU: `python3 scripts/gpu_skips.py tests.xml`.

Reads pytest's JUnit XML (--junitxml) and prints every skipped test that is a CUDA or
Triton-on-GPU test (a `cuda` parameter in its id, e.g. test_x[cuda-cuda] or test_x[triton-cuda])
or was skipped for a CUDA/GPU reason. Exit status 1 if there is any: scripts/gpu_check.sh uses it
on a machine with a GPU, where nothing of the kind may be skipped.
"""

import re
import sys
import xml.etree.ElementTree as ET

_GPU_REASON = re.compile(r"cuda|gpu|triton is not installed", re.IGNORECASE)


def _has_cuda_param(name):
    params = re.search(r"\[(.*)\]$", name)
    return params is not None and "cuda" in params.group(1).split("-")


def gpu_skips(junit_xml):
    """[(test id, skip reason)] of the skipped tests that needed a GPU, in file order."""
    found = []
    for case in ET.parse(junit_xml).iter("testcase"):
        skipped = case.find("skipped")
        if skipped is None:
            continue
        name, reason = case.get("name", ""), skipped.get("message", "")
        if _has_cuda_param(name) or _GPU_REASON.search(reason):
            found.append((f"{case.get('classname')}::{name}", reason))
    return found


def main(argv):
    skips = gpu_skips(argv[1])
    for test, reason in skips:
        print(f"skipped on a GPU machine: {test}: {reason}")
    return 1 if skips else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
