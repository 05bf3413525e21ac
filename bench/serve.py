"""Load benchmark for `ember serve`, side by side with llama.cpp's servers where installed.

    python bench/serve.py [-m MODEL.gguf] [-t 2] [-N 1,4,8,16,32] [-n 128] [--llama-server PATH]

For each N, N clients at once each stream one completion of n tokens (temperature 0; EOS is
ignored: `ignore_eos` for ember, `min_tokens` for llama-cpp-python, so every request runs to
n tokens). Each client has its own prompt, so no server gains from a shared prefix. Prints a
Markdown table: aggregate generated tokens per second (all tokens / the wall time of the
round), p50 and p95 time to first token, per server, and ember's throughput over llama.cpp's.
The servers run one after the other, never at once. Nothing is asserted: the machine is shared.

llama-cpp-python's server (`python -m llama_cpp.server`, its [server] extra) runs one request at
a time; it is started with --interrupt_requests False so that a new request queues instead of
cutting off the one streaming. --llama-python points at another interpreter that has it.
--llama-server runs llama.cpp's own C++ server (`llama-server`, continuous batching) as well,
with as many slots as ember (--parallel) and the same context per slot; it and ember are up at
once and take turns round by round (-r rounds per N; the table gives mean ± sd). It can be built from
the llama.cpp sources that llama-cpp-python's sdist ships (only that package as source: `:all:` would
build its build tools, cmake included, from source too):
    pip download --no-deps --no-binary llama-cpp-python llama-cpp-python && tar xzf llama_cpp_python-*.tar.gz
    cd llama_cpp_python-*/vendor/llama.cpp && cmake -B build -DLLAMA_BUILD_SERVER=ON \
        -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF && cmake --build build --target llama-server -j2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import httpx
import numpy as np

DEFAULT_MODEL = Path.home() / ".cache" / "ember" / "bench" / "SmolLM2-135M-Instruct.Q4_0.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: List[str], url: str, ready_path: str, timeout: float = 120) -> subprocess.Popen:
    # the log goes to a file: a pipe nobody reads would stall the server once full
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{cmd[:4]} exited with {proc.returncode}: {log.read()[-2000:]}")
        try:
            if httpx.get(url + ready_path, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"{cmd[:4]} did not come up in {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def one_stream(client: httpx.AsyncClient, url: str, prompt: str, n_tokens: int) -> Dict[str, float]:
    body = {"model": "bench", "prompt": prompt, "max_tokens": n_tokens, "temperature": 0, "stream": True,
            "ignore_eos": True, "min_tokens": n_tokens}
    t0 = time.perf_counter()
    ttft: Optional[float] = None
    chunks = 0
    async with client.stream("POST", url + "/v1/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                chunks += 1  # one chunk per token on both servers
                if ttft is None:
                    ttft = time.perf_counter() - t0
    return {"ttft": ttft if ttft is not None else float("nan"), "tokens": chunks, "end": time.perf_counter()}


async def round_(url: str, n_clients: int, n_tokens: int, tag: str) -> Dict[str, float]:
    prompts = [f"Story {tag}-{i}: Once upon a time, in a city by the sea number {i}," for i in range(n_clients)]
    limits = httpx.Limits(max_connections=n_clients + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one_stream(client, url, p, n_tokens) for p in prompts))
    wall = max(r["end"] for r in results) - t0
    ttfts = np.array([r["ttft"] for r in results])
    tokens = sum(r["tokens"] for r in results)
    return {"tps": tokens / wall, "p50": float(np.percentile(ttfts, 50)), "p95": float(np.percentile(ttfts, 95)),
            "tokens_per_request": tokens / n_clients}


def run_server(name: str, cmd: List[str], port: int, ready: str, sizes: List[int], n_tokens: int) -> Dict[int, dict]:
    url = f"http://127.0.0.1:{port}"
    print(f"{name}: starting", file=sys.stderr)
    proc = start(cmd, url, ready)
    try:
        # first-request costs out of the way, one request at a time (llama-cpp-python's server
        # runs streams about half as fast once it has seen concurrent requests: N=1 is measured
        # before that)
        for i in range(2):
            asyncio.run(round_(url, 1, 16, f"warm{i}"))
        out = {}
        for n in sizes:
            out[n] = asyncio.run(round_(url, n, n_tokens, f"{name}{n}"))
            r = out[n]
            print(f"{name}: N={n}: {r['tps']:.1f} tokens/s, TTFT p50 {r['p50'] * 1e3:.0f} ms, "
                  f"p95 {r['p95'] * 1e3:.0f} ms, {r['tokens_per_request']:.1f} tokens per request", file=sys.stderr)
        return out
    finally:
        stop(proc)


def run_alternating(servers: Dict[str, tuple], sizes: List[int], n_tokens: int, repeats: int) -> Dict[str, Dict[int, dict]]:
    """servers: name -> (cmd, port, ready path). All are started, then for each N the servers take
    turns, round by round, `repeats` times (a machine whose speed drifts then treats them alike);
    per server and N: tokens/s mean and sd over the rounds, TTFT p50/p95 means."""
    procs, urls = {}, {}
    try:
        for name, (cmd, port, ready) in servers.items():
            print(f"{name}: starting", file=sys.stderr)
            urls[name] = f"http://127.0.0.1:{port}"
            procs[name] = start(cmd, urls[name], ready)
            for i in range(2):
                asyncio.run(round_(urls[name], 1, 16, f"warm{i}"))
        out: Dict[str, Dict[int, dict]] = {name: {} for name in servers}
        for n in sizes:
            rounds: Dict[str, list] = {name: [] for name in servers}
            for rep in range(repeats):
                for name in servers:
                    r = asyncio.run(round_(urls[name], n, n_tokens, f"{name}{n}-{rep}"))
                    rounds[name].append(r)
                    print(f"{name}: N={n} round {rep + 1}: {r['tps']:.1f} tokens/s, TTFT p50 {r['p50'] * 1e3:.0f} ms, "
                          f"p95 {r['p95'] * 1e3:.0f} ms, {r['tokens_per_request']:.1f} tokens per request", file=sys.stderr)
            for name, rs in rounds.items():
                tps = np.array([r["tps"] for r in rs])
                out[name][n] = {"tps": float(tps.mean()), "sd": float(tps.std(ddof=1)) if len(rs) > 1 else 0.0,
                                "p50": float(np.mean([r["p50"] for r in rs])), "p95": float(np.mean([r["p95"] for r in rs]))}
        return out
    finally:
        for proc in procs.values():
            stop(proc)


def llama_available(python: str) -> bool:
    done = subprocess.run([python, "-c", "import llama_cpp.server.app"], capture_output=True)
    return done.returncode == 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-m", "--model", default=str(DEFAULT_MODEL), help="GGUF model (default: SmolLM2 Q4_0 in the cache)")
    p.add_argument("-t", "--threads", type=int, default=2)
    p.add_argument("-N", "--clients", default="1,4,8,16,32", help="concurrent clients per round (default 1,4,8,16,32)")
    p.add_argument("-n", "--n-tokens", type=int, default=128, help="tokens per completion (default 128)")
    p.add_argument("-c", "--ctx-size", type=int, default=512, help="context per request (default 512)")
    p.add_argument("--parallel", type=int, default=32, help="ember serve --parallel (default 32)")
    p.add_argument("--llama-python", default=sys.executable, help="interpreter with llama_cpp.server")
    p.add_argument("--llama-server", help="llama.cpp's llama-server binary: run it too, taking turns with ember")
    p.add_argument("-r", "--repeats", type=int, default=1,
                   help="rounds per N for ember and llama-server, taking turns (default 1)")
    p.add_argument("--no-llama", action="store_true", help="no llama-cpp-python server")
    args = p.parse_args()
    sizes = [int(x) for x in args.clients.split(",")]

    results: Dict[str, Dict[int, dict]] = {}
    port = free_port()
    ember_cmd = [sys.executable, "-m", "ember", "serve", "-m", args.model, "--port", str(port), "-t", str(args.threads),
                 "-c", str(args.ctx_size), "--parallel", str(args.parallel), "--max-queue", "1024"]
    servers = {"ember": (ember_cmd, port, "/health")}
    if args.llama_server:
        lport = free_port()
        servers["llama-server"] = (
            [args.llama_server, "-m", args.model, "--port", str(lport), "-t", str(args.threads), "-tb", str(args.threads),
             "-c", str(args.ctx_size * args.parallel), "--parallel", str(args.parallel), "--log-disable"],
            lport, "/health")
    results.update(run_alternating(servers, sizes, args.n_tokens, args.repeats))
    if not args.no_llama:
        if llama_available(args.llama_python):
            port = free_port()
            results["llama.cpp"] = run_server(
                "llama.cpp", [args.llama_python, "-m", "llama_cpp.server", "--model", args.model, "--port", str(port),
                              "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads),
                              "--n_ctx", str(args.ctx_size), "--interrupt_requests", "False", "--verbose", "False"],
                port, "/v1/models", sizes, args.n_tokens)
        else:
            print("llama.cpp: llama_cpp.server is not importable (pip install 'llama-cpp-python[server]'); skipped",
                  file=sys.stderr)

    names = list(results)
    others = names[1:]
    head = "| N |" + "".join(f" {n} tok/s | {n} TTFT p50 ms | {n} TTFT p95 ms |" for n in names)
    head += "".join(f" ember / {n} |" for n in others)
    print(f"\n{Path(args.model).name}, {args.threads} threads, {args.n_tokens} tokens per request, "
          f"--parallel {args.parallel}\n")
    print(head)
    print("|---:|" + "---:|" * (3 * len(names) + len(others)))
    for n in sizes:
        row = f"| {n} |"
        for name in names:
            r = results[name][n]
            tps = f"{r['tps']:.1f} ± {r['sd']:.1f}" if r.get("sd") else f"{r['tps']:.1f}"
            row += f" {tps} | {r['p50'] * 1e3:.0f} | {r['p95'] * 1e3:.0f} |"
        row += "".join(f" {results['ember'][n]['tps'] / results[o][n]['tps']:.2f} |" for o in others)
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
