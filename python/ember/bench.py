"""``ember bench``: prompt and generation speed, llama-bench style, optionally side by side with
llama.cpp (through llama-cpp-python, when installed).

"pp N" evaluates one batch of N prompt tokens in a fresh sequence; "tg N" decodes N tokens one at
a time after a one-token prompt. Each row is the mean ± standard deviation of R runs after a
warm-up, in tokens per second. With llama.cpp the two engines alternate run by run on the same
file, so a busy machine slows both alike. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from . import _core
from .model import Model

__all__ = ["BenchRow", "run", "format_table"]


class _Ember:
    name = "ember"

    def __init__(self, path: str, n_ctx: int, threads: int):
        t0 = time.perf_counter()
        self.model = Model(path, n_ctx=n_ctx, n_threads=threads, n_batch=n_ctx, verbose=False)
        self.load_seconds = time.perf_counter() - t0
        self.n_vocab = self.model.n_vocab

    def pp(self, tokens: Sequence[int]) -> float:
        m = self.model
        s = m.new_sequence()
        try:
            t0 = time.perf_counter()
            m.decode(tokens, range(len(tokens)), [s] * len(tokens), [False] * (len(tokens) - 1) + [True])
            return time.perf_counter() - t0
        finally:
            m.free_sequence(s)

    def tg(self, tokens: Sequence[int]) -> float:
        m = self.model
        s = m.new_sequence()
        try:
            m.decode([tokens[0]], [0], [s], [True])
            t0 = time.perf_counter()
            for i, tok in enumerate(tokens[1:], start=1):
                m.decode([tok], [i], [s], [True])
            return time.perf_counter() - t0
        finally:
            m.free_sequence(s)


class _LlamaCpp:
    name = "llama.cpp"

    def __init__(self, path: str, n_ctx: int, threads: int):
        import llama_cpp

        t0 = time.perf_counter()
        self.llm = llama_cpp.Llama(path, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=threads,
                                   n_threads_batch=threads, verbose=False)
        self.load_seconds = time.perf_counter() - t0

    def _eval(self, chunks) -> float:
        self.llm.reset()  # the next eval starts at position 0 (llama-cpp-python drops the cache past it)
        t0 = time.perf_counter()
        for c in chunks:
            self.llm.eval(c)
        return time.perf_counter() - t0

    def pp(self, tokens: Sequence[int]) -> float:
        return self._eval([list(tokens)])

    def tg(self, tokens: Sequence[int]) -> float:
        self.llm.reset()
        self.llm.eval([tokens[0]])
        t0 = time.perf_counter()
        for t in tokens[1:]:
            self.llm.eval([t])
        return time.perf_counter() - t0


@dataclass
class BenchRow:
    model: str
    size_bytes: int
    test: str                       # "pp512", "tg128"
    threads: int
    tps: Dict[str, Tuple[float, float]] = field(default_factory=dict)  # engine -> (mean, sd)

    def ratio(self) -> Optional[float]:
        if "llama.cpp" in self.tps and self.tps["llama.cpp"][0] > 0:
            return self.tps["ember"][0] / self.tps["llama.cpp"][0]
        return None


def have_llama_cpp() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(path: str, n_prompt: int = 512, n_gen: int = 128, threads: Optional[int] = None, repeats: int = 3,
        vs_llama_cpp: bool = False) -> Tuple[List[BenchRow], Dict[str, float]]:
    """The pp and tg rows for one model, and facts (load seconds per engine, ember's peak RSS
    when it runs alone)."""
    threads = threads or os.cpu_count() or 1
    if n_prompt < 1 or n_gen < 2 or repeats < 1:
        raise ValueError("need n_prompt >= 1, n_gen >= 2 and repeats >= 1")
    n_ctx = max(n_prompt, n_gen) + 8
    runners = [_Ember(path, n_ctx, threads)]
    facts = {"ember_load_seconds": runners[0].load_seconds}
    if vs_llama_cpp:
        if not have_llama_cpp():
            raise ValueError("--vs-llama-cpp needs llama-cpp-python (pip install llama-cpp-python)")
        runners.append(_LlamaCpp(path, n_ctx, threads))
        facts["llama.cpp_load_seconds"] = runners[1].load_seconds
    n_vocab = runners[0].n_vocab
    # token ids spread over the vocabulary, the same every time
    prompt = [(1 + 7919 * i) % n_vocab for i in range(n_prompt)]
    gen = [(3 + 104729 * i) % n_vocab for i in range(n_gen)]
    rows = []
    size = os.path.getsize(path)
    for kind, tokens, n in (("pp", prompt, n_prompt), ("tg", gen, n_gen - 1)):
        times: Dict[str, List[float]] = {r.name: [] for r in runners}
        for i in range(repeats + 1):
            for r in runners:
                dt = getattr(r, kind)(tokens)
                if i:  # the first round warms caches and pages in the weights
                    times[r.name].append(n / dt)
        row = BenchRow(os.path.basename(path), size, f"{kind}{len(tokens)}", threads)
        for name, v in times.items():
            row.tps[name] = (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
        rows.append(row)
    if not vs_llama_cpp:
        facts["ember_peak_rss_bytes"] = peak_rss_bytes()
    return rows, facts


def format_table(rows: List[BenchRow]) -> str:
    both = any("llama.cpp" in r.tps for r in rows)
    head = "| model | size | threads | test | ember t/s |" + (" llama.cpp t/s | ratio |" if both else "")
    sep = "|---|---:|---:|---|---:|" + ("---:|---:|" if both else "")
    lines = [head, sep]
    for r in rows:
        m, sd = r.tps["ember"]
        line = f"| {r.model} | {r.size_bytes / 2**20:.1f} MiB | {r.threads} | {r.test} | {m:.1f} ± {sd:.1f} |"
        if both:
            lm, lsd = r.tps.get("llama.cpp", (0.0, 0.0))
            ratio = r.ratio()
            line += f" {lm:.1f} ± {lsd:.1f} | {ratio:.2f} |" if ratio else " – | – |"
        lines.append(line)
    return "\n".join(lines)


def isa() -> str:
    return _core.best_isa()
