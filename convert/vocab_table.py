"""The token table: sparse id → (text, type, score) entries laid out densely, llama.cpp's way.

Tokenizers leave holes (tiktoken's reserved ids, added tokens far past the base vocabulary) and
config.json's ``vocab_size`` is often larger than the tokenizer (embeddings padded to a multiple
of 64 or 128). llama.cpp's converter fills every missing id with a ``[PAD{id}]`` token of type
UNUSED, so token ids keep matching embedding rows; this module does the same and refuses a
``vocab_size`` smaller than the tokenizer, since rows for real tokens would be missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import gguf


@dataclass
class Entry:
    text: str
    type: int           # gguf.TokenType
    score: float = 0.0  # only written for SentencePiece vocabularies


def pad_text(token_id: int) -> str:
    # The id in the name (not a running count) keeps every padding token unique and tells
    # which embedding row it stands for.
    return f"[PAD{token_id}]"


def layout(entries: Dict[int, Entry], vocab_size: Optional[int], source: str,
           pad_score: float = 0.0) -> Tuple[List[str], List[int], List[float]]:
    """Dense tokens, types and scores for ids 0 .. n-1.

    ``n`` is ``vocab_size`` when given, otherwise one past the largest id. Missing ids become
    ``[PAD{id}]`` / UNUSED / ``pad_score`` (llama.cpp uses -10000.0 for SentencePiece).
    """
    if not entries:
        raise ValueError(f"{source}: the tokenizer has no tokens")
    n_tokenizer = max(entries) + 1
    if min(entries) < 0:
        raise ValueError(f"{source}: negative token id {min(entries)}")
    if vocab_size is None:
        n = n_tokenizer
    elif vocab_size < n_tokenizer:
        raise ValueError(f"{source}: config vocab_size {vocab_size} is smaller than the tokenizer, "
                         f"whose ids go up to {n_tokenizer - 1}; the embedding would have no rows "
                         f"for the last {n_tokenizer - vocab_size} token(s)")
    else:
        n = vocab_size
    tokens: List[str] = []
    types: List[int] = []
    scores: List[float] = []
    for i in range(n):
        e = entries.get(i)
        if e is None:
            e = Entry(pad_text(i), int(gguf.TokenType.UNUSED), pad_score)
        tokens.append(e.text)
        types.append(int(e.type))
        scores.append(float(e.score))
    return tokens, types, scores
