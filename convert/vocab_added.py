"""Added tokens: where a checkpoint lists them, and whether each is CONTROL or USER_DEFINED.

Hugging Face keeps tokens added on top of the base model (chat markers, tool tags, reserved
slots) in up to three places: ``tokenizer.json``'s ``added_tokens``, ``tokenizer_config.json``'s
``added_tokens_decoder`` and the older ``added_tokens.json``. transformers merges them, the config
winning; so do we. Each added token then gets llama.cpp's type:

* CONTROL when it is marked ``special`` or merely looks special (``<|...|>``, ``<unused..>``,
  ...): several models (command-r, deepseek-coder, gemma) forget the flag on real control tokens.
  llama.cpp matches CONTROL tokens in text only when asked to parse special tokens and does not
  print them, so for a chat marker erring that way is the safe side.
* USER_DEFINED otherwise, with SentencePiece's ``▁`` turned back into a space, because llama.cpp
  matches user-defined tokens against raw (un-normalized) text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import gguf

SPIECE_UNDERLINE = "\u2581"  # ▁, SentencePiece's visible space

# Spellings that are control tokens in practice even when the checkpoint says otherwise.
_LOOK_SPECIAL_EXACT = frozenset({"<pad>", "<mask>", "<2mass>", "[@BOS@]"})
_LOOK_SPECIAL_WRAPPED = (("<|", "|>"), ("<\uff5c", "\uff5c>"), ("<unused", ">"))  # <｜..｜>: deepseek


@dataclass(frozen=True)
class AddedToken:
    content: str
    special: bool
    normalized: bool


def looks_special(text: str) -> bool:
    if text in _LOOK_SPECIAL_EXACT:
        return True
    return any(text.startswith(a) and text.endswith(b) for a, b in _LOOK_SPECIAL_WRAPPED)


def classify(text: str, special: bool) -> Tuple[str, int]:
    """The GGUF text and token type of an added token."""
    if special or looks_special(text):
        return text, int(gguf.TokenType.CONTROL)
    return text.replace(SPIECE_UNDERLINE, " "), int(gguf.TokenType.USER_DEFINED)


def read_json(path: Path) -> Dict[str, Any]:
    """Parse a JSON file holding an object; any failure is a ValueError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_added_tokens(model_dir: Path, tokenizer_json: Optional[dict]) -> Dict[int, AddedToken]:
    """id → AddedToken from every place a checkpoint may list them (later sources win)."""
    found: Dict[int, AddedToken] = {}

    legacy = model_dir / "added_tokens.json"  # {content: id}; slow tokenizers, no flags
    if legacy.is_file():
        for content, token_id in read_json(legacy).items():
            _put(found, token_id, content, False, True, legacy)

    if tokenizer_json is not None:
        for item in tokenizer_json.get("added_tokens") or []:
            if not isinstance(item, dict):
                raise ValueError(f"{model_dir / 'tokenizer.json'}: malformed added_tokens entry {item!r}")
            _put(found, item.get("id"), item.get("content"), bool(item.get("special")),
                 bool(item.get("normalized", True)), model_dir / "tokenizer.json")

    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        decoder = read_json(config).get("added_tokens_decoder") or {}
        for key, item in decoder.items():
            try:
                token_id = int(key)
            except ValueError:
                raise ValueError(f"{config}: added_tokens_decoder key {key!r} is not an id") from None
            if not isinstance(item, dict):
                raise ValueError(f"{config}: malformed added_tokens_decoder entry {key}: {item!r}")
            _put(found, token_id, item.get("content"), bool(item.get("special")),
                 bool(item.get("normalized", True)), config)
    return found


def _put(found: Dict[int, AddedToken], token_id: Any, content: Any, special: bool,
         normalized: bool, source: Path) -> None:
    if not isinstance(token_id, int) or isinstance(token_id, bool) or token_id < 0:
        raise ValueError(f"{source}: added token {content!r} has invalid id {token_id!r}")
    if not isinstance(content, str) or not content:
        raise ValueError(f"{source}: added token {token_id} has no text")
    found[token_id] = AddedToken(content, special, normalized)
