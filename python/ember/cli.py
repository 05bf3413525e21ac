"""The `ember` command.

Subcommands: info (summarize a GGUF file), convert (Hugging Face folder -> GGUF), quantize,
run (the C++ `ember-main` program with llama.cpp's flags), chat (a REPL over Model.chat with the
model's Jinja template), perplexity (llama.cpp's measurement), bench (llama-bench-style speed,
optionally side by side with llama.cpp), serve (the OpenAI-compatible HTTP server, ember.server)
and pull (fetch a known model).
run, chat, perplexity, bench and serve use the default model (ember.models.DEFAULT_MODEL) when no -m is given.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import List, Optional, Sequence

from . import models
from .errors import GGUFError


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def _short(value: object, limit: int = 60) -> str:
    if isinstance(value, list):
        head = ", ".join(_short(v, 20) for v in value[:3])
        more = f", ... ({len(value)} items)" if len(value) > 3 else ""
        return f"[{head}{more}]"
    text = f"{value:.7g}" if isinstance(value, float) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cmd_info(args: argparse.Namespace) -> int:
    from .gguf import GGUFFile

    with GGUFFile(args.model) as f:
        md = f.metadata
        arch = md.get("general.architecture", "?")
        print(f"file:          {f.path}")
        print(f"size:          {_human_bytes(f.file_size)} (GGUF v{f.version}, alignment {f.alignment})")
        print(f"name:          {md.get('general.name', '?')}")
        print(f"architecture:  {arch}")
        params = sum(t.n_elements for t in f.tensors)
        print(f"parameters:    {params / 1e6:.1f} M in {len(f.tensors)} tensors")
        print("hyper-parameters:")
        prefix = f"{arch}."
        for key in sorted(k for k in md if k.startswith(prefix)):
            print(f"  {key[len(prefix):]:<34} {_short(md[key])}")
        model = md.get("tokenizer.ggml.model")
        tokens = md.get("tokenizer.ggml.tokens")
        kind = {"gpt2": "byte-level BPE (gpt2)", "llama": "SentencePiece (llama)"}.get(model, model or "none")
        pre = md.get("tokenizer.ggml.pre")
        print(f"tokenizer:     {kind}" + (f", pre '{pre}'" if pre else "") + (f", {len(tokens)} tokens" if tokens else ""))
        for role in ("bos", "eos", "unknown", "padding"):
            tid = md.get(f"tokenizer.ggml.{role}_token_id")
            if tid is not None:
                piece = tokens[tid] if tokens and 0 <= tid < len(tokens) else "?"
                print(f"  {role + ' token':<14} {tid} {piece!r}")
        if "tokenizer.chat_template" in md:
            print(f"  chat template  {len(md['tokenizer.chat_template'])} characters")
        print("tensor types:")
        counts = Counter(t.type for t in f.tensors)
        sizes = Counter()
        for t in f.tensors:
            sizes[t.type] += t.nbytes
        for name, n in counts.most_common():
            print(f"  {name:<8} {n:>5} tensors  {_human_bytes(sizes[name]):>10}")
        if args.tensors:
            print("tensors:")
            for t in f.tensors:
                print(f"  {t.name:<40} {t.type:<6} {str(list(t.shape)):<20} {_human_bytes(t.nbytes)}")
        if args.metadata:
            print("metadata:")
            for key, value in md.items():
                print(f"  {key:<44} {_short(value)}")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from .quantize import quantize_model

    # Progress and the summary go to stderr from the core; errors reach main()'s handler.
    quantize_model(args.input, args.output, args.type, n_threads=args.threads,
                   allow_requantize=args.allow_requantize, progress=not args.quiet)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .convert import OUTTYPES, convert
    from pathlib import Path

    out = args.outfile or str(Path(args.model_dir.rstrip("/")).name + f"-{args.outtype}.gguf")
    if args.outtype not in OUTTYPES:
        raise ValueError(f"unknown --outtype '{args.outtype}'; choose from {', '.join(OUTTYPES)}")
    convert(args.model_dir, out, args.outtype, progress=not args.quiet)
    return 0


# -- run: the C++ program ------------------------------------------------------------------------
# Flags of `ember-main` whose value is free text (it may look like a flag, e.g. -p "-m"); the
# scan for -m skips over their values.
_MAIN_TEXT_FLAGS = {"-p", "--prompt", "-f", "--file", "-sys", "--system-prompt", "-r", "--reverse-prompt"}


def main_binary() -> Optional[str]:
    """The packaged ember-main program (next to this module), else one on PATH; None if neither."""
    packaged = Path(__file__).parent / "bin" / "ember-main"
    if packaged.is_file() and os.access(packaged, os.X_OK):
        return str(packaged)
    return shutil.which("ember-main")


def _skips_default_model(argv: Sequence[str]) -> bool:
    """Whether the arguments name a model (-m) or only ask for help or the version."""
    i = 0
    while i < len(argv):
        if argv[i] in ("-m", "--model", "-h", "--help", "--version"):
            return True
        i += 2 if argv[i] in _MAIN_TEXT_FLAGS else 1
    return False


def cmd_run(argv: List[str]) -> int:
    """Replace this process with ember-main, every argument passed through (llama.cpp's flags),
    after fetching the default model when no -m is given."""
    binary = main_binary()
    if binary is None:
        raise OSError("the ember-main program is not installed (it is built with the package; "
                      "or put a CMake build's bin/main on PATH as ember-main)")
    if not _skips_default_model(argv):
        argv = ["-m", str(models.fetch())] + list(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(binary, [binary] + list(argv))
    return 1  # not reached


def _model_path(arg: Optional[str]) -> str:
    if arg:
        return arg
    return str(models.fetch())


# -- chat: a REPL over Model.chat ----------------------------------------------------------------
def cmd_chat(args: argparse.Namespace) -> int:
    from .model import Model

    model = Model(_model_path(args.model), n_ctx=args.ctx_size, n_threads=args.threads)
    if not model.chat_template:
        raise ValueError(f"{model.path} has no chat template (tokenizer.chat_template)")
    sampling = dict(temperature=args.temp, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
                    repeat_penalty=args.repeat_penalty, seed=None if args.seed < 0 else args.seed)
    max_tokens = None if args.n_predict < 0 else args.n_predict
    messages = [{"role": "system", "content": args.system}] if args.system else []
    print("ember chat: type a message; /exit or Ctrl-D ends, Ctrl-C stops a reply", file=sys.stderr)
    while True:
        print("> ", end="", flush=True)
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            print()
            return 130
        if not line:  # EOF
            print()
            return 0
        text = line.strip()
        if text == "/exit":
            return 0
        if not text:
            continue
        messages.append({"role": "user", "content": text})
        pieces: List[str] = []
        stream = model.chat(messages, max_tokens, stream=True, **sampling)
        try:
            for piece in stream:
                pieces.append(piece)
                sys.stdout.write(piece)
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass  # the reply stops; what was said stays in the history
        finally:
            stream.close()
        print(flush=True)
        messages.append({"role": "assistant", "content": "".join(pieces)})


# -- perplexity ----------------------------------------------------------------------------------
def cmd_perplexity(args: argparse.Namespace) -> int:
    from .model import Model

    with open(args.file, encoding="utf-8", errors="replace") as f:
        text = f.read()
    model = Model(_model_path(args.model), n_ctx=args.ctx_size, n_threads=args.threads, n_batch=args.batch_size)
    r = model.perplexity(text, args.ctx_size, n_chunks=args.chunks)
    # llama.cpp's shape: the running estimate after each chunk, then the final one
    print(",".join(f"[{i + 1}]{p:.4f}" for i, p in enumerate(r["chunk_ppl"])) + ",")
    if not math.isfinite(r["ppl"]):
        raise ValueError(f"perplexity is not finite ({r['ppl']})")
    print(f"Final estimate: PPL = {r['ppl']:.4f} +/- {r['ppl_error']:.5f}")
    n_eval = len(r["chunk_ppl"]) * args.ctx_size
    rate = n_eval / r["seconds"] if r["seconds"] > 0 else 0.0
    print(f"ember perplexity: {len(r['chunk_ppl'])} chunks of {args.ctx_size} tokens ({r['n_scored']} scored) "
          f"in {r['seconds']:.2f} s, {rate:.1f} tokens per second", file=sys.stderr)
    return 0


# -- bench ---------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from . import bench

    path = _model_path(args.model)
    rows, facts = bench.run(path, args.n_prompt, args.n_gen, args.threads, args.repetitions, args.vs_llama_cpp)
    if args.json:
        print(json.dumps({"rows": [{"model": r.model, "size_bytes": r.size_bytes, "test": r.test, "threads": r.threads,
                                    "tps": r.tps} for r in rows], "facts": facts}))
        return 0
    print(bench.format_table(rows))
    extra = f"ember load {facts['ember_load_seconds'] * 1e3:.0f} ms"
    if "llama.cpp_load_seconds" in facts:
        extra += f", llama.cpp load {facts['llama.cpp_load_seconds'] * 1e3:.0f} ms"
    if "ember_peak_rss_bytes" in facts:
        extra += f", ember peak RSS {facts['ember_peak_rss_bytes'] / 2**20:.0f} MiB"
    print(f"\n{rows[0].threads} threads, {bench.isa()}, {args.repetitions} runs each; {extra}")
    return 0


# -- serve ---------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .server import serve
    except ImportError as e:  # starlette/uvicorn are the [server] extra
        raise OSError(f"ember serve needs the server extra: pip install 'ember[server]' ({e})") from None
    api_key = args.api_key or os.environ.get("EMBER_API_KEY") or None
    serve(_model_path(args.model), host=args.host, port=args.port, parallel=args.parallel, max_queue=args.max_queue,
          api_key=api_key, n_ctx=args.ctx_size, n_threads=args.threads, token_budget=args.batch_size,
          kv_blocks=args.kv_blocks, model_id=args.alias)
    return 0


# -- pull ----------------------------------------------------------------------------------------
def cmd_pull(args: argparse.Namespace) -> int:
    print(models.fetch(args.name))  # progress (downloads) goes to stderr
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ember", description="ember: fast, small LLM inference for GGUF models")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="summarize a GGUF file")
    info.add_argument("model", help="path to a .gguf file")
    info.add_argument("--tensors", action="store_true", help="list every tensor")
    info.add_argument("--metadata", action="store_true", help="list every metadata key")
    info.set_defaults(func=cmd_info)
    quant = sub.add_parser("quantize", help="write a copy of a GGUF model with quantized weights")
    quant.add_argument("input", help="the GGUF model to read")
    quant.add_argument("output", help="the GGUF file to write (never the input)")
    quant.add_argument("type", help="f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, "
                                    "or llama.cpp's mixes q4_k_m, q5_k_m")
    quant.add_argument("-t", "--threads", type=int, default=0, metavar="N", help="threads (default: one per CPU)")
    quant.add_argument("--allow-requantize", action="store_true",
                       help="allow quantizing already-quantized tensors to fewer bits per weight")
    quant.add_argument("--quiet", action="store_true", help="no progress lines or summary")
    quant.set_defaults(func=cmd_quantize)
    conv = sub.add_parser("convert", help="convert a Hugging Face model folder (safetensors) to GGUF")
    conv.add_argument("model_dir", help="folder with config.json, *.safetensors and the tokenizer files")
    conv.add_argument("-o", "--outfile", help="GGUF file to write (default: <folder>-<outtype>.gguf)")
    conv.add_argument("--outtype", default="f16", help="f32, f16 (default), bf16, q8_0, q4_0 or q4_1")
    conv.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    conv.set_defaults(func=cmd_convert)
    # `run` is dispatched before argparse sees it (main() below): every flag is ember-main's
    sub.add_parser("run", add_help=False, help="generate with the C++ program (llama.cpp's flags; `ember run -h`)")
    chat = sub.add_parser("chat", help="chat with a model on stdin, using its chat template")
    chat.add_argument("-m", "--model", help=f"GGUF model (default: fetch '{models.DEFAULT_MODEL}')")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("-c", "--ctx-size", type=int, default=4096, metavar="N", help="context size (default: 4096)")
    chat.add_argument("-t", "--threads", type=int, default=None, metavar="N", help="threads (default: one per CPU)")
    chat.add_argument("-n", "--n-predict", type=int, default=-1, metavar="N",
                      help="tokens per reply at most (default: -1, until the end of the turn)")
    chat.add_argument("--temp", type=float, default=0.8, metavar="N", help="temperature (default: 0.8; 0 = greedy)")
    chat.add_argument("--top-k", type=int, default=40, metavar="N", help="top-k (default: 40)")
    chat.add_argument("--top-p", type=float, default=0.95, metavar="N", help="top-p (default: 0.95)")
    chat.add_argument("--min-p", type=float, default=0.05, metavar="N", help="min-p (default: 0.05)")
    chat.add_argument("--repeat-penalty", type=float, default=1.0, metavar="N", help="repeat penalty (default: 1.0)")
    chat.add_argument("-s", "--seed", type=int, default=-1, metavar="N", help="seed (default: -1, random)")
    chat.set_defaults(func=cmd_chat)
    ppl = sub.add_parser("perplexity", help="llama.cpp's perplexity of a model on a text file")
    ppl.add_argument("-m", "--model", help=f"GGUF model (default: fetch '{models.DEFAULT_MODEL}')")
    ppl.add_argument("-f", "--file", required=True, help="the text to score")
    ppl.add_argument("-c", "--ctx-size", type=int, default=512, metavar="N", help="tokens per chunk (default: 512)")
    ppl.add_argument("-t", "--threads", type=int, default=None, metavar="N", help="threads (default: one per CPU)")
    ppl.add_argument("-b", "--batch-size", type=int, default=512, metavar="N", help="tokens per forward step (default: 512)")
    ppl.add_argument("--chunks", type=int, default=None, metavar="N", help="score at most N chunks (default: all)")
    ppl.set_defaults(func=cmd_perplexity)
    b = sub.add_parser("bench", help="prompt and generation speed (llama-bench style), optionally against llama.cpp")
    b.add_argument("-m", "--model", help="GGUF file (default: the default model)")
    b.add_argument("-p", "--n-prompt", type=int, default=512, metavar="N", help="prompt tokens (pp test, default 512)")
    b.add_argument("-n", "--n-gen", type=int, default=128, metavar="N", help="generated tokens (tg test, default 128)")
    b.add_argument("-t", "--threads", type=int, default=None, metavar="N", help="threads (default: one per CPU)")
    b.add_argument("-r", "--repetitions", type=int, default=3, metavar="N", help="runs per test (default 3)")
    b.add_argument("--vs-llama-cpp", action="store_true", help="run llama.cpp (llama-cpp-python) on the same file too")
    b.add_argument("--json", action="store_true", help="print the results as JSON")
    b.set_defaults(func=cmd_bench)
    srv = sub.add_parser("serve", help="an OpenAI-compatible HTTP server (continuous batching)")
    srv.add_argument("-m", "--model", help=f"GGUF model (default: fetch '{models.DEFAULT_MODEL}')")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    srv.add_argument("-np", "--parallel", type=int, default=8, metavar="N",
                     help="requests generated at once (default: 8)")
    srv.add_argument("--max-queue", type=int, default=128, metavar="N",
                     help="requests that may wait beyond those; more get HTTP 429 (default: 128)")
    srv.add_argument("--api-key", metavar="KEY", help="require 'Authorization: Bearer KEY' (or set EMBER_API_KEY)")
    srv.add_argument("-c", "--ctx-size", type=int, default=4096, metavar="N",
                     help="context of each request, prompt and completion (default: 4096)")
    srv.add_argument("-t", "--threads", type=int, default=None, metavar="N", help="threads (default: one per CPU)")
    srv.add_argument("-b", "--batch-size", type=int, default=512, metavar="N",
                     help="tokens per engine step: decodes first, then prompt chunks (default: 512)")
    srv.add_argument("--kv-blocks", type=int, default=None, metavar="N",
                     help="KV cache blocks of 16 tokens shared by all requests (default: the engine's)")
    srv.add_argument("--alias", metavar="NAME", help="the model's id in the API (default: the file name)")
    srv.set_defaults(func=cmd_serve)
    pull = sub.add_parser("pull", help="fetch a known model into the cache and print its path")
    pull.add_argument("name", nargs="?", default=models.DEFAULT_MODEL,
                      help=f"one of {', '.join(models.MODELS)} (default: {models.DEFAULT_MODEL})")
    pull.set_defaults(func=cmd_pull)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:
        # argparse would claim ember-main's flags (-m, -p, ...); they all pass through untouched
        try:
            return cmd_run(argv[1:])
        except (GGUFError, OSError, ValueError, RuntimeError) as e:
            print(f"ember run: error: {e}", file=sys.stderr)
            return 1
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`ember info x | head`): not an error; keep Python's exit-time
        # flush from failing on the closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (GGUFError, OSError, ValueError, RuntimeError) as e:  # RuntimeError: a download or a full KV cache
        print(f"ember {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
