"""The `ember` command. Subcommands arrive with the issues that build them; today: info, convert, quantize."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from typing import List, Optional

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
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return args.func(args)
    except BrokenPipeError:
        # the reader went away (`ember info x | head`): not an error; keep Python's exit-time
        # flush from failing on the closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (GGUFError, OSError, ValueError) as e:
        print(f"ember {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
