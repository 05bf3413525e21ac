"""tiktoken rank files ("base64 rank" lines: Qwen-1's qwen.tiktoken, cl100k_base) → "gpt2".

A rank file lists byte strings in merge order and nothing else; llama.cpp wants GPT-2 style
tokens and merges, so we rebuild both as llama.cpp's converter does for Qwen-1:

* token ``rank`` is its bytes spelled with GPT-2's byte-to-unicode table;
* its merge is the pair that tiktoken's BPE, run on the token's bytes, ends with just before
  it would make the token itself. tiktoken merges the pair whose concatenation ranks lowest,
  so listing the merges in the rank order of what they make has llama.cpp's BPE pick the same
  pairs. (llama.cpp allows only merges ranked below the token; that is the same pair whenever
  it finds one, and Llama 3's file has tokens, e.g. ``.:.:``, ranked before their halves.)
  A few tokens (Llama 3's `` việc``) are never made by BPE at all: tiktoken produces them only
  when a whole regex piece equals them, as llama.cpp does with ``ignore_merges`` (llama-bpe).
  They get no merge, and a warning says how many there are.

The file says nothing of special tokens or the split regex. Special tokens come from
tokenizer_config.json / tokenizer.json when the checkpoint has them, otherwise from the known
encodings below; the regex (known encodings only) feeds tiktoken for the pre-tokenizer check
hash. All special tokens are CONTROL, as in llama.cpp's Qwen-1 conversion.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import gguf

from .vocab_added import AddedToken
from .vocab_pre import QWEN2_REGEX, CHECK_TEXT, identify
from .vocab_table import Entry

log = logging.getLogger(__name__)

_RANK_LINE = re.compile(rb"[A-Za-z0-9+/]+={0,2} \d+")


@dataclass(frozen=True)
class KnownEncoding:
    regex: str
    specials: Callable[[int], Dict[str, int]]  # number of ranks → special token → id


def _qwen_specials(n_ranks: int) -> Dict[str, int]:
    names = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [f"<|extra_{i}|>" for i in range(205)]
    return {name: n_ranks + i for i, name in enumerate(names)}


_CL100K = KnownEncoding(
    regex=r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    specials=lambda n: {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                        "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
)
# Known by content hash (tiktoken's own pin for cl100k_base) or, for Qwen-1, by file name.
KNOWN_BY_SHA256 = {"223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7": _CL100K}
KNOWN_BY_NAME = {"qwen.tiktoken": KnownEncoding(regex=QWEN2_REGEX, specials=_qwen_specials)}


def byte_to_unicode() -> Dict[int, str]:
    """GPT-2's table: printable Latin-1 bytes stand for themselves, the other 68 bytes for the
    code points 256, 257, ... in byte order, so every token is a visible string."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in kept}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def is_rank_file(path: Path) -> bool:
    with open(path, "rb") as f:
        first = f.readline(4096).strip()  # bounded: the file may be binary, without newlines
    return bool(_RANK_LINE.fullmatch(first))


def read_ranks(path: Path) -> Dict[bytes, int]:
    ranks: Dict[bytes, int] = {}
    with open(path, "rb") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            if not _RANK_LINE.fullmatch(line):
                raise ValueError(f"{path}:{line_no}: not a \"base64 rank\" line")
            token_b64, rank = line.split()
            try:
                token = base64.b64decode(token_b64, validate=True)
            except binascii.Error as e:
                raise ValueError(f"{path}:{line_no}: bad base64: {e}") from None
            if token in ranks:
                raise ValueError(f"{path}:{line_no}: token {token!r} listed twice")
            ranks[token] = int(rank)
    if not ranks:
        raise ValueError(f"{path}: no ranks")
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise ValueError(f"{path}: {len(missing)} single bytes have no rank (first: {missing[0]}); "
                         f"byte-level BPE needs all 256")
    if len(set(ranks.values())) != len(ranks):
        raise ValueError(f"{path}: two tokens share a rank")
    return ranks


def _last_pair(ranks: Dict[bytes, int], token: bytes) -> List[bytes]:
    """tiktoken's BPE of ``token``'s bytes, stopped before the merge that makes ``token``."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 1:
        best, best_rank = -1, None
        for i in range(len(parts) - 1):
            joined = parts[i] + parts[i + 1]
            r = ranks.get(joined)
            if r is not None and (best_rank is None or r < best_rank) and joined != token:
                best, best_rank = i, r
        if best < 0:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return parts


def load(path: Path, added: Dict[int, AddedToken], pre: Optional[str]
         ) -> Tuple[Dict[int, Entry], List[str], str, Dict[str, int]]:
    """(id → entry, merges, pre-tokenizer name, special token → id) of a rank file."""
    import tiktoken

    known = KNOWN_BY_SHA256.get(hashlib.sha256(path.read_bytes()).hexdigest()) or KNOWN_BY_NAME.get(path.name)
    if pre is None and known is None:
        raise ValueError(f"{path}: unknown tiktoken file, so its split regex is unknown and the "
                         f"pre-tokenizer cannot be checked; pass pre=NAME to load_vocab")
    ranks = read_ranks(path)
    spell = byte_to_unicode()
    entries: Dict[int, Entry] = {}
    merges: List[str] = []
    unreachable: List[int] = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        entries[rank] = Entry("".join(spell[b] for b in token), int(gguf.TokenType.NORMAL))
        if len(token) == 1:
            continue
        pair = _last_pair(ranks, token)
        if len(pair) == 2:
            merges.append(" ".join("".join(spell[b] for b in p) for p in pair))
        else:
            unreachable.append(rank)
    if unreachable:
        log.warning("%s: %d token(s) are never made by BPE merges (first: rank %d), only by a "
                    "whole-word match; they get no merge", path, len(unreachable), unreachable[0])

    specials = {tok.content: token_id for token_id, tok in added.items()}
    if not specials and known is not None:
        specials = known.specials(len(ranks))
    rank_ids = set(entries)
    for text, token_id in specials.items():
        if token_id in rank_ids:
            raise ValueError(f"{path}: special token {text!r} would take id {token_id}, "
                             f"which is the rank of {entries[token_id].text!r}")
        entries[token_id] = Entry(text, int(gguf.TokenType.CONTROL))

    if pre is None:
        encoding = tiktoken.Encoding(path.name, pat_str=known.regex, mergeable_ranks=ranks,
                                     special_tokens={})
        pre = identify(encoding.encode(CHECK_TEXT, disallowed_special=()), [known.regex], str(path))
    return entries, merges, pre, specials
