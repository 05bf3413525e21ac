"""The vocabulary of a Hugging Face checkpoint → GGUF ``tokenizer.*`` keys, as llama.cpp writes them.

:func:`load_vocab` reads a checkpoint folder into a :class:`Vocab`; :func:`add_vocab` writes it
with a ``gguf.GGUFWriter``. Which file is read, in llama.cpp's order of preference:

1. ``tokenizer.model`` if it is a SentencePiece model → "llama" (:mod:`vocab_spm`);
2. ``tokenizer.json``: byte-level BPE → "gpt2" (:mod:`vocab_bpe`), or a SentencePiece
   vocabulary kept as BPE with byte fallback → "llama" (:mod:`vocab_spm`);
3. a tiktoken rank file (``*.tiktoken``, or a ``tokenizer.model`` in that format) → "gpt2"
   (:mod:`vocab_tiktoken`).

Added tokens (:mod:`vocab_added`), padding to config.json's ``vocab_size`` (:mod:`vocab_table`),
special ids, flags and chat template (:mod:`vocab_special`) and the BPE pre-tokenizer name
(:mod:`vocab_pre`) are shared. Every problem with the files is a ``ValueError`` naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import gguf

from . import vocab_bpe, vocab_spm, vocab_tiktoken
from .vocab_added import read_added_tokens, read_json
from .vocab_special import ChatTemplate, read_specials
from .vocab_table import layout

log = logging.getLogger(__name__)


@dataclass
class Vocab:
    model: str                      # tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    pre: Optional[str]              # tokenizer.ggml.pre, llama.cpp's names ("default" for SentencePiece)
    tokens: List[str]
    token_types: List[int]          # gguf.TokenType values
    scores: Optional[List[float]]   # SentencePiece scores (None for BPE)
    merges: List[str]               # "a b" strings (BPE only)
    special_ids: Dict[str, int] = field(default_factory=dict)    # "bos", "eos", "unk", "pad", "sep", "mask", "eot", "eom"
    add_special: Dict[str, bool] = field(default_factory=dict)   # "bos"/"eos"/"sep" → add_<kind>_token
    chat_template: Optional[ChatTemplate] = None                 # a string, or [{"name", "template"}, ...]
    add_space_prefix: Optional[bool] = None                      # SentencePiece's add_dummy_prefix
    source: str = ""                                             # the file the vocabulary came from


def load_vocab(model_dir: Union[str, Path], vocab_size: Optional[int] = None, *,
               pre: Optional[str] = None) -> Vocab:
    """Read the tokenizer of a checkpoint folder.

    ``vocab_size`` is config.json's: the vocabulary is padded up to it with ``[PAD{id}]`` UNUSED
    tokens, and a smaller one is an error. ``pre`` forces tokenizer.ggml.pre for BPE
    vocabularies instead of recognizing it (see :mod:`vocab_pre`).
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ValueError(f"{model_dir}: not a directory")
    if vocab_size is not None and vocab_size <= 0:
        raise ValueError(f"{model_dir}: vocab_size must be positive, got {vocab_size}")

    sp_path = model_dir / "tokenizer.model"
    json_path = model_dir / "tokenizer.json"
    proto = vocab_spm.read_model(sp_path) if sp_path.is_file() else None
    if proto is not None:
        return _from_sentencepiece(model_dir, sp_path, proto, vocab_size)
    if json_path.is_file():
        return _from_tokenizer_json(model_dir, json_path, vocab_size, pre)
    rank_files = sorted(model_dir.glob("*.tiktoken"))
    if sp_path.is_file() and vocab_tiktoken.is_rank_file(sp_path):
        rank_files.append(sp_path)
    if len(rank_files) > 1:
        raise ValueError(f"{model_dir}: several tiktoken files ({', '.join(p.name for p in rank_files)}); "
                         f"cannot tell which is the tokenizer")
    if rank_files:
        return _from_tiktoken(model_dir, rank_files[0], vocab_size, pre)
    if sp_path.is_file():
        raise ValueError(f"{sp_path}: neither a SentencePiece model nor a tiktoken rank file")
    raise ValueError(f"{model_dir}: no tokenizer found (looked for tokenizer.model, tokenizer.json "
                     f"and *.tiktoken)")


def _from_sentencepiece(model_dir: Path, path: Path, proto, vocab_size: Optional[int]) -> Vocab:
    tokenizer_json = _optional_json(model_dir / "tokenizer.json")
    added = read_added_tokens(model_dir, tokenizer_json)
    entries, add_space_prefix, own_ids = vocab_spm.load_model(path, proto, added)
    tokens, types, scores = layout(entries, vocab_size, str(path), vocab_spm.PAD_SCORE)
    return _finish(model_dir, path, "llama", "default", tokens, types, scores, [], own_ids, add_space_prefix)


def _from_tokenizer_json(model_dir: Path, path: Path, vocab_size: Optional[int], pre: Optional[str]) -> Vocab:
    tokenizer_json = read_json(path)
    model = tokenizer_json.get("model")
    if not isinstance(model, dict):
        raise ValueError(f"{path}: no \"model\" object")
    kind = model.get("type")
    added = read_added_tokens(model_dir, tokenizer_json)
    if vocab_spm.is_sentencepiece_json(tokenizer_json):
        entries, add_space_prefix = vocab_spm.load_json(path, tokenizer_json, added)
        tokens, types, scores = layout(entries, vocab_size, str(path), vocab_spm.PAD_SCORE)
        return _finish(model_dir, path, "llama", "default", tokens, types, scores, [], {}, add_space_prefix)
    if kind == "BPE" and vocab_bpe.is_byte_level(tokenizer_json):
        entries, merges, pre = vocab_bpe.load(path, tokenizer_json, added, pre)
        tokens, types, _ = layout(entries, vocab_size, str(path))
        return _finish(model_dir, path, "gpt2", pre, tokens, types, None, merges, {}, None)
    if kind == "BPE":
        raise ValueError(f"{path}: BPE without byte-level encoding or byte fallback is not supported "
                         f"(llama.cpp has no tokenizer for it)")
    hint = " (for a SentencePiece Unigram model, convert from its tokenizer.model)" if kind == "Unigram" else ""
    raise ValueError(f"{path}: unsupported tokenizer model type {kind!r}; supported: byte-level BPE "
                     f"and SentencePiece-style BPE with byte_fallback{hint}")


def _from_tiktoken(model_dir: Path, path: Path, vocab_size: Optional[int], pre: Optional[str]) -> Vocab:
    added = read_added_tokens(model_dir, _optional_json(model_dir / "tokenizer.json"))
    entries, merges, pre, specials = vocab_tiktoken.load(path, added, pre)
    tokens, types, _ = layout(entries, vocab_size, str(path))
    endoftext = specials.get("<|endoftext|>")
    own_ids = {} if endoftext is None else {"bos": endoftext, "eos": endoftext, "unk": endoftext}
    return _finish(model_dir, path, "gpt2", pre, tokens, types, None, merges, own_ids, None)


def _finish(model_dir: Path, path: Path, model: str, pre: Optional[str], tokens: List[str],
            types: List[int], scores: Optional[List[float]], merges: List[str],
            own_ids: Dict[str, int], add_space_prefix: Optional[bool]) -> Vocab:
    special_ids, add_special, template = read_specials(model_dir, tokens, own_ids)
    log.info("%s: %s vocabulary, %d tokens, %d merges, pre %r", path, model, len(tokens), len(merges), pre)
    return Vocab(model=model, pre=pre, tokens=tokens, token_types=types, scores=scores, merges=merges,
                 special_ids=special_ids, add_special=add_special, chat_template=template,
                 add_space_prefix=add_space_prefix, source=str(path))


def _optional_json(path: Path) -> Optional[dict]:
    return read_json(path) if path.is_file() else None


def add_vocab(writer: gguf.GGUFWriter, vocab: Vocab) -> None:
    """Write every tokenizer.* key of ``vocab``."""
    n = len(vocab.tokens)
    if len(vocab.token_types) != n or (vocab.scores is not None and len(vocab.scores) != n):
        raise ValueError(f"{vocab.source}: {n} tokens but {len(vocab.token_types)} types and "
                         f"{'no' if vocab.scores is None else len(vocab.scores)} scores")
    writer.add_tokenizer_model(vocab.model)
    if vocab.pre is not None:
        writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    writer.add_token_types(vocab.token_types)
    if vocab.merges:
        writer.add_token_merges(vocab.merges)
    for kind, token_id in vocab.special_ids.items():
        if not 0 <= token_id < n:
            raise ValueError(f"{vocab.source}: {kind} token id {token_id} is outside the {n} tokens")
        getattr(writer, f"add_{kind}_token_id")(token_id)
    for kind, value in vocab.add_special.items():
        getattr(writer, f"add_add_{kind}_token")(value)
    if vocab.add_space_prefix is not None:
        writer.add_add_space_prefix(vocab.add_space_prefix)
    if vocab.chat_template is not None:
        writer.add_chat_template(vocab.chat_template)
