#!/usr/bin/env python3
"""Throughput of ember's quant kernels and GGUF reader next to gguf-py's numpy implementation.

    python bench/bench_quants.py [--quick] [--repeats N]

Prints markdown tables. Throughput is in MB/s of float32 (1 MB = 10^6 bytes): the output of a
dequantize, the input of a quantize. Every figure is the best of N runs after one warm-up run, on
one thread, and includes allocating the result array, as a caller of either library pays for it. "same bits"
says whether ember's result equals gguf-py's byte for byte.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import platform
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if glob.glob(os.path.join(REPO, "python", "ember", "_core*.so")):
    sys.path.insert(0, os.path.join(REPO, "python"))  # benchmark this checkout's build

import numpy as np  # noqa: E402

import gguf  # noqa: E402
import gguf.quants  # noqa: E402

import ember  # noqa: E402
import ember.models  # noqa: E402
from ember import _core, quants  # noqa: E402

DEQUANTIZE_TYPES = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
QUANTIZE_TYPES = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]
# ember has no quantizer for these; their benchmark input is random blocks whose fp16 scale
# fields (byte offsets in the block) are set to small finite values.
RANDOM_BLOCK_SCALES = {"Q2_K": (80, 82), "Q3_K": (108,)}


# ---------------------------------------------------------------- helpers
def best_time(fn, repeats: int) -> float:
    """The shortest wall time of `repeats` calls of fn(), in seconds, after one untimed call.

    The warm-up call matters: the first few allocations of a large result array take fresh
    pages from the kernel (page faults cost more than a fast kernel), later ones reuse them.
    """
    fn()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def mb_per_s(n_floats: int, seconds: float) -> float:
    return n_floats * 4 / 1e6 / seconds


def fmt_rate(x: "float | None") -> str:
    return "—" if x is None else f"{x:,.0f}"


def fmt_ratio(a: "float | None", b: "float | None") -> str:
    return "—" if a is None or b is None else f"{a / b:.1f}x"


def fmt_same(same: "bool | None") -> str:
    return "—" if same is None else ("yes" if same else "NO")


def print_table(headers: list, rows: list) -> None:
    """A markdown table, first column left-aligned, the others right-aligned, padded to width."""
    cells = [[str(c) for c in row] for row in [headers] + rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "| " + " | ".join(parts) + " |"

    print(line(cells[0]))
    print("|" + "|".join([":" + "-" * (widths[0] + 1)] + ["-" * (w + 1) + ":" for w in widths[1:]]) + "|")
    for row in cells[1:]:
        print(line(row))
    print()


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def gguf_type(name: str):
    return gguf.GGMLQuantizationType[name]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def llama_cpp_note() -> str:
    try:
        import llama_cpp  # noqa: F401
    except Exception:
        return "not importable (not compared)"
    return f"importable (version {getattr(llama_cpp, '__version__', '?')}), not compared here"


def print_header(args, rows: int, cols: int) -> None:
    print("# ember quant benchmark\n")
    print(f"- CPU: {cpu_model()} ({os.cpu_count()} logical CPUs; everything below runs on one thread)")
    isa_env = os.environ.get("EMBER_ISA")
    print(f"- ember best ISA: `{_core.best_isa()}`" + (f" (EMBER_ISA={isa_env})" if isa_env else ""))
    print(f"- Python {platform.python_version()}, numpy {np.__version__}, gguf-py {_package_version('gguf')}")
    print(f"- llama_cpp: {llama_cpp_note()}")
    print(f"- matrix {rows} x {cols} float32 ({rows * cols * 4 / 1e6:.1f} MB), best of {args.repeats}"
          f"{' (--quick)' if args.quick else ''}; MB/s of float32, 1 MB = 10^6 bytes\n")


def _package_version(name: str) -> str:
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:
        return "?"


# ---------------------------------------------------------------- inputs
def random_blocks(qtype: str, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    info = quants.type_info(qtype)
    n_blocks = rows * cols // info["block_size"]
    raw = rng.integers(0, 256, size=(n_blocks, info["type_size"]), dtype=np.uint8)
    for off in RANDOM_BLOCK_SCALES[qtype]:
        scales = rng.uniform(1e-3, 1e-2, n_blocks).astype(np.float16)
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, -1)


def blocks_for(qtype: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if qtype in RANDOM_BLOCK_SCALES:
        return random_blocks(qtype, x.shape[0], x.shape[1], rng)
    return quants.quantize(x, qtype)


# ---------------------------------------------------------------- benchmarks
def bench_dequantize(x: np.ndarray, repeats: int, rng: np.random.Generator) -> None:
    print("## dequantize (MB/s of float32 output)\n")
    shape, n = x.shape, x.size
    rows = []
    for name in DEQUANTIZE_TYPES:
        data = blocks_for(name, x, rng)
        best = best_time(lambda: quants.dequantize(data, name, shape), repeats)
        scalar = best_time(lambda: quants.dequantize(data, name, shape, isa="scalar"), repeats)
        ref = best_time(lambda: gguf.quants.dequantize(data, gguf_type(name)), repeats)
        same = same_bits(quants.dequantize(data, name, shape), gguf.quants.dequantize(data, gguf_type(name)))
        r_best, r_scalar, r_ref = mb_per_s(n, best), mb_per_s(n, scalar), mb_per_s(n, ref)
        rows.append([name, fmt_rate(r_best), fmt_rate(r_scalar), fmt_rate(r_ref), fmt_ratio(r_best, r_ref), fmt_same(same)])
    isa = _core.best_isa()
    print_table(["type", f"ember ({isa})", "ember scalar", "gguf numpy", "ember/numpy", "same bits"], rows)


def gguf_can_quantize(name: str) -> bool:
    try:
        gguf.quants.quantize(np.zeros((1, 256), np.float32), gguf_type(name))
    except NotImplementedError:
        return False
    return True


def bench_quantize(x: np.ndarray, repeats: int) -> None:
    print("## quantize (MB/s of float32 input)\n")
    n = x.size
    rows = []
    for name in QUANTIZE_TYPES:
        best = best_time(lambda: quants.quantize(x, name), repeats)
        scalar = best_time(lambda: quants.quantize(x, name, isa="scalar"), repeats)
        r_best, r_scalar, r_ref, same = mb_per_s(n, best), mb_per_s(n, scalar), None, None
        if gguf_can_quantize(name):
            r_ref = mb_per_s(n, best_time(lambda: gguf.quants.quantize(x, gguf_type(name)), repeats))
            theirs = np.ascontiguousarray(gguf.quants.quantize(x, gguf_type(name))).view(np.uint8)
            same = same_bits(quants.quantize(x, name), theirs.reshape(x.shape[0], -1))
        rows.append([name, fmt_rate(r_best), fmt_rate(r_scalar), fmt_rate(r_ref), fmt_ratio(r_best, r_ref), fmt_same(same)])
    isa = _core.best_isa()
    print_table(["type", f"ember ({isa})", "ember scalar", "gguf numpy", "ember/numpy", "same bits"], rows)
    print("gguf-py has no K-quant quantizers; ember's Q4_K/Q5_K/Q6_K search their scales (not ggml's bits).\n")


def open_ember(path: str):
    f = ember.GGUFFile(path)
    meta = f.metadata
    tensors = [(t.name, t.shape, t.type, t.offset) for t in f.tensors]
    f.close()
    return meta, tensors


def open_gguf(path: str):
    r = gguf.GGUFReader(path)
    meta = {name: field.contents() for name, field in r.fields.items()}
    tensors = [(t.name, tuple(int(d) for d in reversed(t.shape)), t.tensor_type.name, t.data_offset) for t in r.tensors]
    return meta, tensors


def dequantize_all_ember(f: "ember.GGUFFile") -> None:
    for t in f.tensors:
        f.read_tensor(t.name)


def gguf_tensor(t) -> np.ndarray:
    out = gguf.quants.dequantize(t.data, t.tensor_type)
    # F32 comes back as a view of the file mapping; copy it so both sides produce owned arrays.
    return out.copy() if t.tensor_type == gguf.GGMLQuantizationType.F32 else out


def dequantize_all_gguf(r: "gguf.GGUFReader") -> None:
    for t in r.tensors:
        gguf_tensor(t)


def models_identical(f: "ember.GGUFFile", r: "gguf.GGUFReader") -> bool:
    by_name = {t.name: t for t in r.tensors}
    return all(same_bits(f.read_tensor(t.name), gguf_tensor(by_name[t.name]).reshape(t.shape)) for t in f.tensors)


def bench_models(repeats: int) -> None:
    print("## real models\n")
    rows = []
    smol = str(ember.models.fetch("smollm2", quiet=True))
    t_e = best_time(lambda: open_ember(smol), repeats)
    t_g = best_time(lambda: open_gguf(smol), repeats)
    meta, tensors = open_ember(smol)
    rows.append([f"open + metadata ({len(meta)} keys) + tensor table ({len(tensors)}), SmolLM2",
                 f"{t_e * 1e3:,.1f} ms", f"{t_g * 1e3:,.1f} ms", fmt_ratio(t_g, t_e), "—"])
    for key in ("smollm2", "gemma3"):
        path = str(ember.models.fetch(key, quiet=True))
        f, r = ember.GGUFFile(path), gguf.GGUFReader(path)
        n = sum(t.n_elements for t in f.tensors)
        types = sorted({t.type for t in f.tensors})
        t_e = best_time(lambda: dequantize_all_ember(f), repeats)
        t_g = best_time(lambda: dequantize_all_gguf(r), repeats)
        label = f"dequantize all {len(f.tensors)} tensors ({n / 1e6:.0f}M values; {'/'.join(types)}), {key}"
        rows.append([label, f"{t_e:.3f} s ({fmt_rate(mb_per_s(n, t_e))} MB/s)",
                     f"{t_g:.3f} s ({fmt_rate(mb_per_s(n, t_g))} MB/s)", fmt_ratio(t_g, t_e),
                     fmt_same(models_identical(f, r))])
        f.close()
        del r
    print_table(["task", "ember", "gguf numpy", "ember/numpy", "same bits"], rows)
    print("ember/numpy here is gguf-py's time over ember's (higher = ember faster).\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 1024 x 512 matrix and 3 repeats")
    ap.add_argument("--repeats", type=int, help="runs per measurement, best one kept (default 5, 3 with --quick)")
    args = ap.parse_args()
    rows, cols = (1024, 512) if args.quick else (4096, 1024)
    args.repeats = args.repeats or (3 if args.quick else 5)

    print_header(args, rows, cols)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols), dtype=np.float32)
    bench_dequantize(x, args.repeats, rng)
    bench_quantize(x, args.repeats)
    bench_models(args.repeats)


if __name__ == "__main__":
    main()
