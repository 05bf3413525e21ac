"""SentencePiece vocabularies → llama.cpp's "llama" model, from tokenizer.model or tokenizer.json.

``tokenizer.model`` is read with the ``sentencepiece`` package (which validates it) and its
protobuf: pieces, scores and piece types map one to one onto GGUF's (NORMAL, UNKNOWN, CONTROL,
USER_DEFINED, UNUSED, BYTE share their numbers), and ``add_dummy_prefix`` of the normalizer spec
becomes ``add_space_prefix``.

Checkpoints also ship the same vocabulary as a tokenizer.json BPE model with ``byte_fallback``
(transformers converts SentencePiece to that; some folders have only it). There the scores are
gone, and llama.cpp's SentencePiece tokenizer needs them: it merges the adjacent pair whose
result scores highest. We rebuild scores that give the same merge order as the JSON's merges:
NORMAL pieces ranked by the first merge that produces them (pieces no merge produces, single
characters, after, by id), score = -rank. For a SentencePiece-made file that is the original
order (ids are sorted by score), though not the original numbers. BYTE ``<0xXX>`` pieces and the
unknown piece get 0.0, as SentencePiece gives them. (llama.cpp's own converter gives every
piece -1000.0 in this case, so its tokenizer then merges left to right, not in merge order.)

In both forms the added tokens from the checkpoint then override their ids, with llama.cpp's
score -1000.0 and the CONTROL/USER_DEFINED rule of :mod:`vocab_added`.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Dict, Optional, Tuple

import gguf

from .vocab_added import SPIECE_UNDERLINE, AddedToken, classify
from .vocab_table import Entry

log = logging.getLogger(__name__)

ADDED_SCORE = -1000.0   # llama.cpp's score for tokens from the added-token lists
PAD_SCORE = -10000.0    # and for the [PAD{id}] fillers of a SentencePiece vocabulary
_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def read_model(path: Path):
    """The ModelProto of a SentencePiece model file, or None if it is not one."""
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    data = path.read_bytes()
    try:
        sentencepiece.SentencePieceProcessor().LoadFromSerializedProto(data)
        return sentencepiece_model_pb2.ModelProto.FromString(data)
    except Exception:  # sentencepiece raises RuntimeError, protobuf DecodeError
        return None


def load_model(path: Path, proto, added: Dict[int, AddedToken]
               ) -> Tuple[Dict[int, Entry], bool, Dict[str, int]]:
    """(id → entry, add_space_prefix, the model's own special ids) of a tokenizer.model."""
    from sentencepiece import sentencepiece_model_pb2

    piece_types = sentencepiece_model_pb2.ModelProto.SentencePiece.Type
    to_gguf = {
        piece_types.NORMAL: gguf.TokenType.NORMAL,
        piece_types.UNKNOWN: gguf.TokenType.UNKNOWN,
        piece_types.CONTROL: gguf.TokenType.CONTROL,
        piece_types.USER_DEFINED: gguf.TokenType.USER_DEFINED,
        piece_types.UNUSED: gguf.TokenType.UNUSED,
        piece_types.BYTE: gguf.TokenType.BYTE,
    }
    entries: Dict[int, Entry] = {}
    for token_id, p in enumerate(proto.pieces):
        if p.type not in to_gguf:
            raise ValueError(f"{path}: piece {token_id} {p.piece!r} has unknown type {p.type}")
        entries[token_id] = Entry(p.piece, int(to_gguf[p.type]), p.score)
    _overlay(entries, added)

    spec = proto.trainer_spec  # ids the model was trained with; -1 means none
    own_ids = {typ: i for typ, i in (("unk", spec.unk_id), ("bos", spec.bos_id),
                                     ("eos", spec.eos_id), ("pad", spec.pad_id))
               if 0 <= i < len(proto.pieces)}
    return entries, bool(proto.normalizer_spec.add_dummy_prefix), own_ids


def is_sentencepiece_json(tokenizer_json: dict) -> bool:
    model = tokenizer_json.get("model") or {}
    return model.get("type") == "BPE" and bool(model.get("byte_fallback"))


def load_json(path: Path, tokenizer_json: dict, added: Dict[int, AddedToken]
              ) -> Tuple[Dict[int, Entry], bool]:
    """(id → entry, add_space_prefix) of a SentencePiece vocabulary kept as tokenizer.json."""
    model = tokenizer_json["model"]
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{path}: model.vocab is missing or empty")
    if any(not isinstance(i, int) or i < 0 for i in vocab.values()):
        raise ValueError(f"{path}: model.vocab has an invalid id")

    first_merge: Dict[int, int] = {}  # id of a piece → rank of the first merge producing it
    for rank, m in enumerate(model.get("merges") or []):
        if isinstance(m, str) and " " in m:
            merged = m.replace(" ", "", 1)
        elif isinstance(m, list) and len(m) == 2 and all(isinstance(p, str) for p in m):
            merged = m[0] + m[1]
        else:
            raise ValueError(f"{path}: merge {m!r} is neither \"a b\" nor [\"a\", \"b\"]")
        merged_id = vocab.get(merged)
        if merged_id is None:
            raise ValueError(f"{path}: merge {m!r} makes {merged!r}, which is not in the vocabulary")
        first_merge.setdefault(merged_id, rank)

    unk = model.get("unk_token")
    entries: Dict[int, Entry] = {}
    normal = []
    for text, token_id in vocab.items():
        if token_id in added:
            continue  # typed and scored by _overlay
        if _BYTE_PIECE.fullmatch(text):
            entries[token_id] = Entry(text, int(gguf.TokenType.BYTE), 0.0)
        elif text == unk:
            entries[token_id] = Entry(text, int(gguf.TokenType.UNKNOWN), 0.0)
        else:
            normal.append(token_id)
    normal.sort(key=lambda i: (first_merge.get(i, math.inf), i))
    id_to_text = {i: t for t, i in vocab.items()}
    for rank, token_id in enumerate(normal):
        entries[token_id] = Entry(id_to_text[token_id], int(gguf.TokenType.NORMAL), -float(rank))
    _overlay(entries, added)
    return entries, _adds_space_prefix(tokenizer_json)


def _overlay(entries: Dict[int, Entry], added: Dict[int, AddedToken]) -> None:
    for token_id, token in added.items():
        text, kind = classify(token.content, token.special)
        old = entries.get(token_id)
        if old is not None and old.text != text and old.text.replace(SPIECE_UNDERLINE, " ") != text:
            log.warning("added token %d replaces piece %r with %r", token_id, old.text, text)
        entries[token_id] = Entry(text, kind, ADDED_SCORE)


def _adds_space_prefix(tokenizer_json: dict) -> bool:
    """Whether the JSON puts a ▁ before the text, as SentencePiece's add_dummy_prefix does."""
    def walk(node: Optional[dict], key: str):
        if not node:
            return
        yield node
        for child in node.get(key) or []:
            yield from walk(child, key)

    for n in walk(tokenizer_json.get("normalizer"), "normalizers"):
        if n.get("type") == "Prepend" and n.get("prepend") == SPIECE_UNDERLINE:
            return True
    for p in walk(tokenizer_json.get("pre_tokenizer"), "pretokenizers"):
        if p.get("type") == "Metaspace":
            scheme = p.get("prepend_scheme")
            return scheme in ("always", "first") if scheme is not None else bool(p.get("add_prefix_space", True))
    return False
