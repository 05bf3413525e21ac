#!/usr/bin/env python3
"""Time `ember quantize` for every TYPE on SmolLM2-135M.

    python bench/bench_quantize.py [--threads N] [--repeats N]

The source is an F16 GGUF made from the cached SmolLM2 Q4_1 file with `ember quantize ... f16`
(Q4_1 and Q8_0 widen to F16 without requantizing), so every TYPE converts from the same F16
weights and no requantization is involved. Prints a markdown table: the best of N runs (wall
time of the whole quantize_model call: read, convert, write), the output size and the types.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if glob.glob(os.path.join(REPO, "python", "ember", "_core*.so")):
    sys.path.insert(0, os.path.join(REPO, "python"))  # benchmark this checkout's build

import ember.models  # noqa: E402
from ember.quantize import QUANTIZE_MODEL_TYPES, quantize_model  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="ember-bench-") as tmp:
        src = os.path.join(tmp, "smollm2-f16.gguf")
        quantize_model(ember.models.fetch("smollm2", quiet=True), src, "f16", progress=False)
        print(f"SmolLM2-135M, F16 source ({os.path.getsize(src) / 2**20:.1f} MiB), {args.threads} threads, "
              f"best of {args.repeats}; {platform.machine()}, {os.cpu_count()} CPUs\n")
        print("| TYPE | seconds | output MiB | tensor types |")
        print("|---|---:|---:|---|")
        for qtype in QUANTIZE_MODEL_TYPES:
            out = os.path.join(tmp, f"out-{qtype}.gguf")
            best, stats = float("inf"), None
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                stats = quantize_model(src, out, qtype, n_threads=args.threads, progress=False)
                best = min(best, time.perf_counter() - t0)
            types = ", ".join(f"{k} {v}" for k, v in stats["tensor_types"].items())
            print(f"| {qtype} | {best:.2f} | {stats['output_bytes'] / 2**20:.1f} | {types} |")
            os.remove(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
