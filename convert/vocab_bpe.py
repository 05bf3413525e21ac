"""Byte-level BPE from tokenizer.json (GPT-2, Llama 3, Qwen2, SmolLM, ...) → llama.cpp's "gpt2".

Tokens are the model's vocabulary in id order, still in GPT-2's byte-to-unicode spelling
(``Ġ`` for a space), which is what llama.cpp expects; added tokens are written as their plain
text. Merges become llama.cpp's ``"left right"`` strings whether the file uses the old string
form or the list form transformers writes since 4.45. The pre-tokenizer name comes from
:mod:`vocab_pre`, with the ``tokenizers`` library encoding the check text.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import gguf

from .vocab_added import AddedToken, classify
from .vocab_pre import CHECK_TEXT, identify, split_regexes
from .vocab_table import Entry

log = logging.getLogger(__name__)

# gguf-py writes a space inside a list-form merge as the character 256 places up (GPT-2's
# spelling of a space byte), since llama.cpp splits each merge at its one space.
_SPACE_IN_MERGE = chr(ord(" ") + 256)


def is_byte_level(tokenizer_json: dict) -> bool:
    def has_byte_level(node: Optional[dict], key: str) -> bool:
        if not node:
            return False
        if node.get("type") == "ByteLevel":
            return True
        return any(has_byte_level(n, key) for n in node.get(key) or [])
    return (has_byte_level(tokenizer_json.get("pre_tokenizer"), "pretokenizers")
            or has_byte_level(tokenizer_json.get("decoder"), "decoders"))


def load(path: Path, tokenizer_json: dict, added: Dict[int, AddedToken],
         pre: Optional[str]) -> Tuple[Dict[int, Entry], List[str], str]:
    """(id → entry, merges, pre-tokenizer name) of a byte-level BPE tokenizer.json."""
    from tokenizers import Tokenizer  # the library that defines the format reads it

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises plain Exception subclasses from Rust
        raise ValueError(f"{path}: the tokenizers library cannot load it: {e}") from None

    vocab = tokenizer_json["model"].get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{path}: model.vocab is missing or empty")
    entries: Dict[int, Entry] = {}
    for text, token_id in vocab.items():
        if not isinstance(token_id, int) or token_id < 0:
            raise ValueError(f"{path}: token {text!r} has invalid id {token_id!r}")
        entries[token_id] = Entry(text, int(gguf.TokenType.NORMAL))
    for token_id, token in added.items():
        text = token.content
        if not token.normalized:
            # llama.cpp matches CONTROL and USER_DEFINED tokens on raw text, so store what the
            # tokenizer turns the token into (llama.cpp's converter does the same round trip).
            text = tokenizer.decode(tokenizer.encode(text, add_special_tokens=False).ids,
                                    skip_special_tokens=False)
            if text != token.content:
                log.info("%s: added token %d %r reads back as %r", path, token_id, token.content, text)
        text, kind = classify(text, token.special)
        entries[token_id] = Entry(text, kind)

    merges = _merges(path, tokenizer_json["model"].get("merges"))
    if pre is None:
        ids = tokenizer.encode(CHECK_TEXT).ids
        regexes = split_regexes(tokenizer_json.get("pre_tokenizer"), tokenizer_json.get("normalizer"))
        pre = identify(ids, regexes, str(path))
    return entries, merges, pre


def _merges(path: Path, merges: object) -> List[str]:
    if not isinstance(merges, list) or not merges:
        raise ValueError(f"{path}: model.merges is missing or empty")
    out: List[str] = []
    for m in merges:
        if isinstance(m, str) and " " in m:
            out.append(m)
        elif isinstance(m, list) and len(m) == 2 and all(isinstance(p, str) and p for p in m):
            out.append(" ".join(p.replace(" ", _SPACE_IN_MERGE) for p in m))
        else:
            raise ValueError(f"{path}: merge {m!r} is neither \"a b\" nor [\"a\", \"b\"]")
    return out
