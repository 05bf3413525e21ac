#!/usr/bin/env python3
"""Prompt and generation speed of the engine, llama-bench style: "pp N" evaluates one batch of N
prompt tokens in a fresh sequence, "tg N" decodes N tokens one at a time after a one-token
prompt. Each row is the mean ± standard deviation of R runs after a warm-up; tokens/s counts the
tokens evaluated. Where llama-cpp-python is installed (`pip install llama-cpp-python`) the same
file runs through llama.cpp too, runs alternating, and the ratio is printed.

    python bench/bench_engine.py [-m MODEL.gguf ...] [-p 512] [-n 128] [-t 2] [-r 3]

Without -m: the default model (SmolLM2-135M-Instruct Q4_1). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if glob.glob(os.path.join(REPO, "python", "ember", "_core*.so")):
    sys.path.insert(0, os.path.join(REPO, "python"))  # benchmark this checkout's build

import ember  # noqa: E402
from ember import models  # noqa: E402


class EmberRunner:
    name = "ember"

    def __init__(self, path: str, n_ctx: int, threads: int):
        self.m = ember.Model(path, n_ctx=n_ctx, n_threads=threads, n_batch=n_ctx, verbose=False)
        self.n_vocab = self.m.n_vocab

    def pp(self, tokens):
        s = self.m.new_sequence()
        try:
            t0 = time.perf_counter()
            self.m.decode(tokens, range(len(tokens)), [s] * len(tokens), [False] * (len(tokens) - 1) + [True])
            return time.perf_counter() - t0
        finally:
            self.m.free_sequence(s)

    def tg(self, tokens):
        s = self.m.new_sequence()
        try:
            t0 = time.perf_counter()
            for i, tok in enumerate(tokens):
                self.m.decode([tok], [i], [s], [True])
            return time.perf_counter() - t0
        finally:
            self.m.free_sequence(s)


class LlamaCppRunner:
    name = "llama.cpp"

    def __init__(self, path: str, n_ctx: int, threads: int):
        import llama_cpp

        self.llm = llama_cpp.Llama(path, n_ctx=n_ctx, n_batch=n_ctx, n_threads=threads, n_threads_batch=threads,
                                   verbose=False, logits_all=False)

    def _run(self, chunks):
        self.llm.reset()  # the next eval starts at position 0 (llama-cpp-python drops the cache past it)
        t0 = time.perf_counter()
        for c in chunks:
            self.llm.eval(c)
        return time.perf_counter() - t0

    def pp(self, tokens):
        return self._run([tokens])

    def tg(self, tokens):
        return self._run([[t] for t in tokens])


def measure(runners, tokens, kind, repeats):
    """Alternate the engines run by run; the first run of each is a warm-up."""
    times = {r.name: [] for r in runners}
    for i in range(repeats + 1):
        for r in runners:
            dt = getattr(r, kind)(tokens)
            if i:
                times[r.name].append(len(tokens) / dt)
    return {k: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", help="GGUF file (repeatable; default: the default model)")
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("-r", "--repeats", type=int, default=3)
    args = ap.parse_args()
    paths = args.model or [str(models.fetch(quiet=True))]
    try:
        import llama_cpp  # noqa: F401
        have_llama = True
    except ImportError:
        have_llama = False
        print("(llama-cpp-python is not installed: ember alone)\n", file=sys.stderr)

    print(f"| model | test | ember t/s |" + (" llama.cpp t/s | ratio |" if have_llama else ""))
    print("|---|---|---:|" + ("---:|---:|" if have_llama else ""))
    for path in paths:
        n_ctx = args.n_prompt + args.n_gen + 8
        runners = [EmberRunner(path, n_ctx, args.threads)]
        if have_llama:
            runners.append(LlamaCppRunner(path, n_ctx, args.threads))
        # token ids spread over the vocabulary, deterministic
        n_vocab = runners[0].n_vocab
        prompt = [(1 + 7919 * i) % n_vocab for i in range(args.n_prompt)]
        gen = [(3 + 104729 * i) % n_vocab for i in range(args.n_gen)]
        for kind, tokens in (("pp", prompt), ("tg", gen)):
            res = measure(runners, tokens, kind, args.repeats)
            e_mean, e_sd = res["ember"]
            row = f"| {os.path.basename(path)} | {kind}{len(tokens)} | {e_mean:.1f} ± {e_sd:.1f} |"
            if have_llama:
                l_mean, l_sd = res["llama.cpp"]
                row += f" {l_mean:.1f} ± {l_sd:.1f} | {e_mean / l_mean:.2f} |"
            print(row, flush=True)
    print(f"\n{args.threads} threads, {ember._core.best_isa()}, {args.repeats} runs each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
