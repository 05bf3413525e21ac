#!/usr/bin/env python3
"""The speed table of the kernel issue, as Markdown: SmolLM2-135M-Instruct in Q4_0, Q4_1, Q8_0,
F16 and Q4_K_M, pp512 and tg128, ember next to llama.cpp (llama-cpp-python, when installed), with
2 threads and with 1; then load time and peak RSS, and kernel microbenchmarks (GB/s of the
matrix-vector product per weight type, GFLOP/s of the 512-token matrix product).

    python bench/bench_table.py [-r 3] [-t 2] [--out table.md] [--skip-1-thread]

The Q4_0, Q8_0, F16 and Q4_K_M files are made once with ember's quantizer from the shipped Q4_1
(into ~/.cache/ember/bench/), so every variant holds the same weights up to its own rounding. Each
model runs in its own `ember bench` process (a clean peak RSS); the engines alternate run by run.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if glob.glob(os.path.join(REPO, "python", "ember", "_core*.so")):
    sys.path.insert(0, os.path.join(REPO, "python"))  # benchmark this checkout's build

import numpy as np  # noqa: E402

import ember  # noqa: E402
from ember import _core, bench, models, quants  # noqa: E402

VARIANTS = ["q4_0", "q4_1", "q8_0", "f16", "q4_k_m"]


def model_files() -> dict:
    base = models.fetch("smollm2", quiet=True)
    out_dir = models.cache_dir() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"q4_1": str(base)}
    for v in VARIANTS:
        if v == "q4_1":
            continue
        path = out_dir / f"SmolLM2-135M-Instruct.{v.upper()}.gguf"
        if not path.exists():
            ember.quantize_model(str(base), str(path), v, allow_requantize=True, progress=False)
        files[v] = str(path)
    return files


def ember_bench(path: str, threads: int, repeats: int, vs: bool) -> dict:
    cmd = [sys.executable, "-m", "ember.cli", "bench", "-m", path, "-p", "512", "-n", "128", "-t", str(threads),
           "-r", str(repeats), "--json"] + (["--vs-llama-cpp"] if vs else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"ember bench failed for {path}: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def speed_table(files: dict, threads: int, repeats: int, vs: bool) -> str:
    head = "| quant | pp512 ember | pp512 llama.cpp | ratio | tg128 ember | tg128 llama.cpp | ratio |"
    if not vs:
        head = "| quant | pp512 ember | tg128 ember |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for v in VARIANTS:
        r = ember_bench(files[v], threads, repeats, vs)["rows"]
        cells = [v.upper()]
        for row in r:
            e = row["tps"]["ember"]
            cells.append(f"{e[0]:.1f} ± {e[1]:.1f}")
            if vs:
                lc = row["tps"]["llama.cpp"]
                cells += [f"{lc[0]:.1f} ± {lc[1]:.1f}", f"**{e[0] / lc[0]:.2f}**"]
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def facts_table(files: dict, threads: int) -> str:
    lines = ["| quant | file | load (ember) | peak RSS (ember, alone) |", "|---|---:|---:|---:|"]
    for v in VARIANTS:
        f = ember_bench(files[v], threads, 1, False)["facts"]
        lines.append(f"| {v.upper()} | {os.path.getsize(files[v]) / 2**20:.0f} MiB | {f['ember_load_seconds'] * 1e3:.0f} ms | "
                     f"{f['ember_peak_rss_bytes'] / 2**20:.0f} MiB |")
    return "\n".join(lines)


def kernel_table(threads: int) -> str:
    rng = np.random.default_rng(0)
    rows, cols = 1536, 576  # SmolLM2's feed-forward gate
    lines = ["| weights | matrix-vector GB/s (1 thread) | GB/s (%d threads) | 512-token product GFLOP/s (%d threads) |"
             % (threads, threads), "|---|---:|---:|---:|"]
    for t in ["Q4_0", "Q4_1", "Q5_0", "Q8_0", "Q4_K", "Q6_K", "F16"]:
        c = 768 if t.endswith("_K") else cols
        w = (rng.standard_normal((rows, c)) * 0.5).astype(np.float32)
        data = w.astype(np.float16).view(np.uint8).reshape(rows, -1) if t == "F16" else quants.quantize(w, t.lower())
        gbs1 = data.nbytes / _core._ops_matmul_time(data, t, c, 1, 1, 20) / 1e9
        gbs = data.nbytes / _core._ops_matmul_time(data, t, c, 1, threads, 20) / 1e9
        gflops = 2 * rows * c * 512 / _core._ops_matmul_time(data, t, c, 512, threads, 3) / 1e9
        lines.append(f"| {t} | {gbs1:.1f} | {gbs:.1f} | {gflops:.1f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-r", "--repeats", type=int, default=3)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--out", help="also write the Markdown here")
    ap.add_argument("--skip-1-thread", action="store_true")
    args = ap.parse_args()
    vs = bench.have_llama_cpp()
    if not vs:
        print("llama-cpp-python is not installed: ember's figures alone (pip install llama-cpp-python)", file=sys.stderr)
    files = model_files()
    t0 = time.time()
    parts = [f"### SmolLM2-135M-Instruct, {args.threads} threads ({bench.isa()}, mean ± sd of {args.repeats} runs)\n",
             speed_table(files, args.threads, args.repeats, vs)]
    if not args.skip_1_thread:
        parts += ["\n### 1 thread\n", speed_table(files, 1, args.repeats, vs)]
    parts += ["\n### Load time and memory\n", facts_table(files, args.threads),
              "\n### Kernels\n", kernel_table(args.threads),
              f"\n({time.time() - t0:.0f} s)"]
    text = "\n".join(parts)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
