"""The `ember` command. Subcommands arrive with the issues that build them; today: info."""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ember", description="ember: fast, small LLM inference for GGUF models")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="summarize a GGUF file")
    info.add_argument("model", help="path to a .gguf file")
    info.add_argument("--tensors", action="store_true", help="list every tensor")
    info.add_argument("--metadata", action="store_true", help="list every metadata key")
    info.set_defaults(func=cmd_info)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return args.func(args)
    except (GGUFError, OSError, ValueError) as e:
        print(f"ember {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
