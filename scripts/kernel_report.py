"""What the GPU kernels cost, read from the compiled code, on a machine without a GPU.

    python scripts/kernel_report.py [--arch 90,80] [--ops awing_loss] [--all-functions] [--json]

Run it without TRITON_INTERPRET (the interpreter's kernels cannot be compiled).

For each CUDA kernel (nvcc -cubin per architecture, the extension's flags) and each Triton
specialisation the wrappers launch for the benchmark cases (triton.compile with a GPUTarget),
prints: registers, spills, shared memory, theoretical occupancy, the SASS instructions of the
hot loop per element, the MUFU (transcendental) count, and the widths of the global loads and
stores. This is how kernel speed is judged before it runs (CONTRIBUTING.md).

Instructions per element: the hot loop is the kernel's outermost loop (the grid-stride tile loop
of the CUDA kernels; the whole program of a Triton kernel without a loop), counted statically
and divided by the elements one thread handles per iteration, which each case declares. A nested
loop inside it is unrolled by nothing and counted once: the report flags it ("inner loops").
A gather kernel (the graph ops) declares hot="loads": its hot loop is then its per-edge loop
(see hot_loop), and an element is one feature of one edge.
"""

import argparse
import dataclasses
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _cuda_home():
    """The toolkit of nvcc, through wrapper scripts (`exec /usr/local/cuda-13.0/bin/nvcc`)."""
    if os.environ.get("CUDA_HOME"):
        return os.environ["CUDA_HOME"]
    for candidate in ("/usr/local/cuda",):
        if os.path.exists(os.path.join(candidate, "include", "cuda_runtime.h")):
            return candidate
    nvcc = shutil.which("nvcc")
    return os.path.dirname(os.path.dirname(os.path.realpath(nvcc))) if nvcc else None


os.environ.setdefault("CUDA_HOME", _cuda_home() or "")
import torch  # noqa: E402  (reads CUDA_HOME at import)
import torch.utils.cpp_extension as cpp_extension  # noqa: E402

# Per-SM limits for the theoretical occupancy (CUDA occupancy calculator data).
SM_LIMITS = {
    90: dict(regs=65536, threads=2048, blocks=32, smem=233472, smem_block=232448),
    80: dict(regs=65536, threads=2048, blocks=32, smem=167936, smem_block=166912),
}
_RESERVED_SMEM_PER_BLOCK = 1024


@dataclasses.dataclass
class Case:
    """A kernel to report: which compiled function, how it is launched, what one thread does."""
    label: str
    threads: int               # threads per block (CTA)
    elements_per_iteration: int  # elements one thread handles per hot-loop iteration
    dynamic_smem: int = 0      # bytes of dynamic shared memory at launch
    hot: str = "mufu"          # how the hot loop is found: "mufu" or "loads" (see hot_loop)


def _triton_tools():
    import triton
    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")


def _tool(name):
    local = os.path.join(_triton_tools(), name)
    return local if os.path.exists(local) else shutil.which(name)


def occupancy(arch, regs, threads, smem):
    """Theoretical occupancy (resident warps / max warps) and what limits it."""
    lim = SM_LIMITS[arch]
    warps = -(-threads // 32)
    regs_per_warp = -(-max(regs, 1) * 32 // 256) * 256
    limits = {
        "threads": lim["threads"] // (warps * 32),
        "blocks": lim["blocks"],
        "registers": lim["regs"] // (regs_per_warp * warps),
        "shared memory": lim["smem"] // (smem + _RESERVED_SMEM_PER_BLOCK) if smem else 10 ** 9,
    }
    blocks = min(limits.values())
    limiter = min(limits, key=limits.get)
    return blocks * warps / (lim["threads"] // 32), blocks * warps, limiter


def parse_sass(text):
    """{function name: [(address, opcode, operands)]} from `cuobjdump -sass`."""
    functions, current = {}, None
    for line in text.splitlines():
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            current = functions.setdefault(m.group(1), [])
            continue
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)\s*([^;]*);", line)
        if m and current is not None:
            current.append((int(m.group(1), 16), m.group(3), m.group(4)))
    return functions


def loops(instructions):
    """[(start, end)] address ranges of backward branches, outermost first."""
    found = []
    for addr, op, operands in instructions:
        if op.startswith("BRA") or op.startswith("JMP"):
            m = re.search(r"0x([0-9a-f]+)", operands)
            if m and int(m.group(1), 16) <= addr:
                found.append((int(m.group(1), 16), addr))
    return sorted(found, key=lambda r: r[0] - r[1])


_LOAD_BYTES = {"128": 16, "64": 8, "U16": 2, "S16": 2, "U8": 1, "S8": 1}


def _load_bytes(op):
    """Bytes one thread reads with a global load opcode (LDG.E.128: 16), else 0."""
    if op.split(".")[0] != "LDG":
        return 0
    return next((_LOAD_BYTES[p] for p in op.split(".")[1:] if p in _LOAD_BYTES), 4)


def hot_loop(instructions, ranges, hot="mufu"):
    """The loop that does the element-wise maths: the innermost loop holding the most MUFU
    (transcendental) instructions, else the outermost loop, else the whole function. With
    hot="loads" (a gather), the smallest loop holding a global load of the widest width that
    any loop loads: one edge's iteration (the compilers unroll edge loops by 4 and keep a
    one-edge remainder loop, which is the one counted)."""
    if not ranges:
        return instructions[0][0], instructions[-1][0]

    def inside(r):
        return [op for a, op, _ in instructions if r[0] <= a <= r[1]]

    if hot == "loads":
        widest = max(max(map(_load_bytes, inside(r)), default=0) for r in ranges)
        holding = [r for r in ranges if widest and widest in map(_load_bytes, inside(r))]
        return min(holding, key=lambda r: r[1] - r[0]) if holding else ranges[0]

    def mufu(r):
        return sum(op.startswith("MUFU") for op in inside(r))

    most = max(mufu(r) for r in ranges)
    if most == 0:
        return ranges[0]
    # Innermost among the loops holding (nearly) all of them: an enclosing tile loop adds a few
    # of its own (reciprocals for its index divisions).
    return min((r for r in ranges if mufu(r) >= 0.75 * most), key=lambda r: r[1] - r[0])


def hot_loop_stats(instructions, hot="mufu"):
    """Instruction counts of the hot loop (see hot_loop)."""
    ranges = loops(instructions)
    start, end = hot_loop(instructions, ranges, hot)
    body = [(a, op) for a, op, _ in instructions if start <= a <= end and op != "NOP"]
    inner = [r for r in ranges if start <= r[0] and r[1] <= end and r != (start, end)]
    ops = [op for _, op in body]

    def width(prefix):
        counts = {}
        for op in ops:
            if op.split(".")[0] == prefix:
                bits = next((p for p in op.split(".")[1:] if p in ("64", "128", "U16", "U8",
                                                                 "S16", "S8")), "32")
                counts[bits] = counts.get(bits, 0) + 1
        return counts

    return dict(count=len(body), mufu=sum(op.startswith("MUFU") for op in ops),
                loads=width("LDG"), stores=width("STG"), shared_loads=width("LDS"),
                inner_loops=len(inner), whole_kernel=not ranges)


def _ptxas_info(stderr):
    """{mangled name: dict(regs, spill_stores, spill_loads, smem)} from `-Xptxas -v`."""
    info, name = {}, None
    for line in stderr.splitlines():
        m = re.search(r"Function properties for (\S+)", line) or \
            re.search(r"Compiling entry function '(\S+)'", line)
        if m:
            name = m.group(1)
            info.setdefault(name, dict(regs=0, spill_stores=0, spill_loads=0, smem=0))
            continue
        if name is None:
            continue
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            info[name].update(spill_stores=int(m.group(1)), spill_loads=int(m.group(2)))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            info[name]["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            info[name]["smem"] = int(s.group(1)) if s else 0
    return info


def _demangle(names):
    tool = _tool("cu++filt") or shutil.which("c++filt")
    if not tool:
        return {n: n for n in names}
    out = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True).stdout
    return dict(zip(names, out.splitlines()))


def _pip_cuda_includes():
    """Headers of the nvidia-* wheels next to torch (cusparse.h, cublas_v2.h, ...), as setup.py."""
    try:
        import nvidia
    except ImportError:
        return []
    return sorted(d for root in nvidia.__path__ for d in glob.glob(os.path.join(root, "*", "include")))


def compile_cuda(source, arch, workdir):
    """nvcc -cubin of one .cu with the extension's flags; returns (cubin path, ptxas stderr)."""
    cubin = os.path.join(workdir, f"{os.path.basename(source)}.sm{arch}.cubin")
    includes = cpp_extension.include_paths(device_type="cuda") + _pip_cuda_includes()
    cmd = [os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc"), "-cubin",
           f"-arch=sm_{arch}", "-O3", "-lineinfo", "-std=c++20", "-DLK_WITH_CUDA",
           "-DTORCH_API_INCLUDE_EXTENSION_H", "-DTORCH_EXTENSION_NAME=_C", "-Xptxas", "-v",
           *cpp_extension.COMMON_NVCC_FLAGS, *[f"-I{d}" for d in includes], source, "-o", cubin]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"nvcc failed for {source}:\n{done.stderr[-3000:]}")
    return cubin, done.stderr


def sass_of(cubin):
    out = subprocess.run([_tool("cuobjdump"), "-sass", cubin], capture_output=True, text=True)
    return parse_sass(out.stdout)


def _row(label, arch, regs, spills, smem, case, stats):
    occ, warps, limiter = occupancy(arch, regs, case.threads, smem + case.dynamic_smem) \
        if case else (None, None, None)
    per_elem = stats["count"] / case.elements_per_iteration if case else None
    fmt = lambda d: " ".join(f"{k}b×{v}" for k, v in sorted(d.items())) or "-"  # noqa: E731
    return dict(kernel=label, arch=f"sm_{arch}", regs=regs, spills=spills,
                smem=smem + (case.dynamic_smem if case else 0),
                occupancy=None if occ is None else f"{occ:.0%} ({warps} warps, {limiter})",
                hot_loop=stats["count"], per_element=per_elem,
                mufu_per_element=stats["mufu"] / case.elements_per_iteration if case else None,
                loads=fmt(stats["loads"]), stores=fmt(stats["stores"]),
                inner_loops=stats["inner_loops"])


def report_cuda(op, arch, workdir, show_all):
    from scripts.kernel_cases import cuda_cases
    source = os.path.join(ROOT, "csrc", "cuda", f"{op}.cu")
    cubin, stderr = compile_cuda(source, arch, workdir)
    info, functions = _ptxas_info(stderr), sass_of(cubin)
    names = _demangle(list(functions))
    cases = cuda_cases(op)
    rows = []
    for mangled, instructions in functions.items():
        pretty = names.get(mangled, mangled)
        case = next((c for pattern, c in cases.items() if pattern in pretty), None)
        if case is None and not show_all:
            continue
        p = info.get(mangled, dict(regs=0, spill_stores=0, spill_loads=0, smem=0))
        rows.append(_row(case.label if case else pretty[:90], arch, p["regs"],
                         p["spill_stores"] + p["spill_loads"], p["smem"], case,
                         hot_loop_stats(instructions, case.hot if case else "mufu")))
    return rows


def report_triton(op, arch, workdir):
    import triton
    from triton.backends.compiler import GPUTarget

    from scripts.kernel_cases import triton_cases
    rows = []
    for case, fn, signature, constexprs, attrs, num_warps in triton_cases(op):
        src = triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constexprs,
                                        attrs=attrs)
        compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                                  options=dict(num_warps=num_warps))
        cubin = os.path.join(workdir, f"{fn.__name__}.{abs(hash(case.label))}.sm{arch}.cubin")
        with open(cubin, "wb") as f:
            f.write(compiled.asm["cubin"])
        usage = subprocess.run([_tool("cuobjdump"), "-res-usage", cubin], capture_output=True,
                               text=True).stdout
        m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", usage)
        regs, stack, smem, local = map(int, m.groups())
        (instructions,) = sass_of(cubin).values()
        rows.append(_row(case.label, arch, regs, stack + local,
                         max(smem, compiled.metadata.shared), case,
                         hot_loop_stats(instructions, case.hot)))
    return rows


def print_rows(rows):
    cols = ["kernel", "arch", "regs", "spills", "smem", "occupancy", "hot_loop", "per_element",
            "mufu_per_element", "loads", "stores", "inner_loops"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{r[c]:.1f}" if isinstance(r[c], float) else ("" if r[c] is None else str(r[c]))
                 for c in cols]
        print("| " + " | ".join(cells) + " |")


def report(op, arch, backends=("cuda", "triton"), show_all=False):
    """The rows of one op on one architecture (what main prints)."""
    with tempfile.TemporaryDirectory() as workdir:
        rows = report_cuda(op, arch, workdir, show_all) if "cuda" in backends else []
        return rows + (report_triton(op, arch, workdir) if "triton" in backends else [])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="90,80", help="comma-separated SM versions")
    parser.add_argument("--ops", default=None, help="comma-separated ops (default: all)")
    parser.add_argument("--backends", default="cuda,triton")
    parser.add_argument("--all-functions", action="store_true",
                        help="also list CUDA functions that no case describes")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON lines")
    args = parser.parse_args(argv)
    from scripts.kernel_cases import OPS
    ops = args.ops.split(",") if args.ops else list(OPS)
    backends = args.backends.split(",")
    for op in ops:
        for arch in (int(a) for a in args.arch.split(",")):
            rows = report(op, arch, backends, args.all_functions)
            if args.json:
                print("\n".join(json.dumps(dict(r, op=op)) for r in rows))
                continue
            print(f"\n## {op}, sm_{arch}\n")
            print_rows(rows)


if __name__ == "__main__":
    main()
