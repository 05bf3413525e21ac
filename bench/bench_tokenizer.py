#!/usr/bin/env python3
"""Tokenizer encoding speed: ember's C++ tokenizer next to Hugging Face `tokenizers` (the Rust
backend of transformers' fast tokenizers), both on one thread.

    python bench/bench_tokenizer.py [--repeats N] [--mb SIZE]

The text is the test corpus (tests/tokenizer_corpus.py) joined by newlines and repeated up to
SIZE MB (default 1). Two ways to encode it: the whole text in one call, and its lines one by one
(ember: a Python loop over Tokenizer.encode; tokenizers: encode_batch with parallelism off).
Special-token strings in the text are encoded as plain text by both. Each figure is the best of N
runs after a warm-up; "same ids" says whether the two produced identical ids. Gemma 3 (SentencePiece)
is skipped with a note if its half of the tokenizer fails to load or encode.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import sys
import time

# One thread for tokenizers: no Rayon pool, no parallel encode_batch.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if glob.glob(os.path.join(REPO, "python", "ember", "_core*.so")):
    sys.path.insert(0, os.path.join(REPO, "python"))  # benchmark this checkout's build
sys.path.insert(0, os.path.join(REPO, "tests"))  # the corpus, and the cached HF tokenizer folders

from ember import _core, models  # noqa: E402
from tokenizer_corpus import corpus  # noqa: E402


def build_text(megabytes: float) -> str:
    target = int(megabytes * 1_000_000)
    base = "\n".join(corpus(4000))
    text = base
    while len(text.encode("utf-8")) < target:
        text += "\n" + base
    return text.encode("utf-8")[:target].decode("utf-8", "ignore")


def best_of(repeats: int, fn):
    fn()  # warm-up
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def hf_tokenizer(name: str, path):
    """The tokenizers.Tokenizer transformers builds from the GGUF (cached by the tests)."""
    from test_convert_vocab import hf_folder
    from tokenizers import Tokenizer, pre_tokenizers

    tok = Tokenizer.from_file(str(hf_folder(path) / "tokenizer.json"))
    if name == "smollm2":  # SmolLM2's own pre-tokenizer (see tests/test_tokenizer_bpe.py: smol_hf)
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    tok.encode_special_tokens = True  # special-token strings are text, as ember's parse_special=False
    return tok


def bench_model(name: str, text: str, repeats: int):
    path = models.fetch(name, quiet=True)
    ember_tok = _core.Tokenizer(str(path))
    hf = hf_tokenizer(name, path)
    data = text.encode("utf-8")
    lines = text.split("\n")
    line_bytes = [s.encode("utf-8") for s in lines]

    t_e, ids_e = best_of(repeats, lambda: ember_tok.encode(data, False, False))
    t_h, enc_h = best_of(repeats, lambda: hf.encode(text, add_special_tokens=False))
    t_el, lines_e = best_of(repeats, lambda: [ember_tok.encode(b, False, False) for b in line_bytes])
    t_hl, lines_h = best_of(repeats, lambda: hf.encode_batch(lines, add_special_tokens=False))
    same_whole = ids_e == enc_h.ids
    same_lines = lines_e == [e.ids for e in lines_h]
    n_whole, n_lines = len(ids_e), sum(map(len, lines_e))
    return [
        (name, "whole text", "ember", n_whole, t_e, same_whole),
        (name, "whole text", "tokenizers", len(enc_h.ids), t_h, same_whole),
        (name, f"{len(lines)} lines", "ember (loop)", n_lines, t_el, same_lines),
        (name, f"{len(lines)} lines", "tokenizers (encode_batch)", sum(len(e.ids) for e in lines_h), t_hl, same_lines),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mb", type=float, default=1.0, help="text size in MB (10^6 bytes)")
    args = ap.parse_args()

    import tokenizers

    text = build_text(args.mb)
    print(f"# Tokenizer encoding, {len(text.encode()) / 1e6:.2f} MB of text, one thread")
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"tokenizers {tokenizers.__version__}, best of {args.repeats}\n")
    rows, notes = [], []
    for name in ("smollm2", "gemma3"):
        try:
            rows += bench_model(name, text, args.repeats)
        except Exception as e:  # Gemma's SentencePiece half may not exist yet
            notes.append(f"{name}: skipped ({type(e).__name__}: {e})")
    print("| model | input | engine | tokens | seconds | tokens/s | same ids |")
    print("|---|---|---|---:|---:|---:|---|")
    for model, inp, engine, n, t, same in rows:
        print(f"| {model} | {inp} | {engine} | {n:,} | {t:.3f} | {n / t:,.0f} | {'yes' if same else 'NO'} |")
    for n in notes:
        print(f"\n{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
