"""Tokenizers from GGUF vocabularies: text ↔ token ids, streaming detokenization, chat templates.

The work happens in C++ (cpp/tokenizer/): byte-level BPE with the pre-tokenizer the file names,
or SentencePiece; special tokens; BOS/EOS. ``Tokenizer.from_gguf`` reads only the vocabulary,
not the weights.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, List, Mapping, Optional, Sequence

from . import _core, chat

__all__ = ["Tokenizer", "StreamDecoder"]


def _utf8(text: object) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"text is not valid Unicode: unpaired surrogate {text[e.start]!r} at index {e.start}") from None


class StreamDecoder:
    """Turns token ids into text one at a time, never splitting a UTF-8 character."""

    def __init__(self, tokenizer: "Tokenizer", skip_special: bool = False):
        self._dec = _core.StreamDecoder(tokenizer._tok, skip_special)

    def push(self, token_id: int) -> str:
        return self._dec.push(int(token_id))

    def flush(self) -> str:
        return self._dec.flush()


class Tokenizer:
    def __init__(self, core: "_core.Tokenizer", chat_template: Optional[str] = None):
        self._tok = core
        self.chat_template = chat_template

    @classmethod
    def from_gguf(cls, path: "str | os.PathLike[str]") -> "Tokenizer":
        path = os.fsencode(os.fspath(path))
        reader = _core.GGUFReader(path)
        template = reader.get("tokenizer.chat_template")
        return cls(_core.Tokenizer(path), template if isinstance(template, str) else None)

    # -- properties ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._tok.vocab_size

    @property
    def bos_id(self) -> Optional[int]:
        return None if self._tok.bos_id < 0 else self._tok.bos_id

    @property
    def eos_id(self) -> Optional[int]:
        return None if self._tok.eos_id < 0 else self._tok.eos_id

    @property
    def eot_id(self) -> Optional[int]:
        return None if self._tok.eot_id < 0 else self._tok.eot_id

    @property
    def model(self) -> str:
        """"gpt2" (byte-level BPE) or "llama" (SentencePiece)."""
        return self._tok.model

    # -- text <-> ids ---------------------------------------------------------------------------
    def encode(self, text: str, add_special: bool = True, parse_special: bool = False, *,
               add_bos: Optional[bool] = None, add_eos: Optional[bool] = None) -> List[int]:
        """Token ids for text. add_special adds BOS/EOS as the model file says (add_bos/add_eos
        override); parse_special matches control tokens such as "<|im_start|>" written in the text."""
        return self._tok.encode(_utf8(text), bool(add_special), bool(parse_special), add_bos, add_eos)

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        return self._tok.decode(self._ids(ids), bool(skip_special))

    def token_to_piece(self, token_id: int) -> bytes:
        """The bytes one token stands for (may be part of a UTF-8 character)."""
        return self._tok.token_bytes(self._id(token_id))

    def id_to_token(self, token_id: int) -> str:
        """The token as the vocabulary spells it (e.g. "Ġthe", "▁the", "<0x0A>")."""
        return self._tok.token_text(self._id(token_id))

    def stream(self, skip_special: bool = False) -> StreamDecoder:
        return StreamDecoder(self, skip_special)

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True,
                            **extra: Any) -> str:
        """The prompt text for a conversation, rendered from the model's own template."""
        bos = self._tok.token_text(self._tok.bos_id) if self._tok.bos_id >= 0 else ""
        eos = self._tok.token_text(self._tok.eos_id) if self._tok.eos_id >= 0 else ""
        return chat.render(self.chat_template or "", messages, add_generation_prompt=add_generation_prompt,
                           bos_token=bos, eos_token=eos, **extra)

    @staticmethod
    def _id(token_id: object) -> int:
        if isinstance(token_id, bool) or not isinstance(token_id, int) and not hasattr(token_id, "__index__"):
            raise TypeError(f"token id must be an int, got {type(token_id).__name__}")
        return int(token_id)

    def _ids(self, ids: Iterable[int]) -> List[int]:
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be a sequence of ints")
        return [self._id(i) for i in ids]  # the core checks the range

    def __repr__(self) -> str:
        return f"Tokenizer({self.model}, {self.vocab_size} tokens)"
