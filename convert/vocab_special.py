"""Special token ids, the add_bos/add_eos/add_sep flags and the chat template of a checkpoint.

gguf-py's ``SpecialVocab`` is llama.cpp's own reader for these: token names from
tokenizer_config.json resolved through tokenizer.json's added tokens, ids from config.json, the
flags from tokenizer_config.json and the tokenizer.json post-processor's template, and the chat
template from tokenizer_config.json, chat_template.jinja or chat_template.json. We use it as is,
so the keys match what llama.cpp writes, and only fill what it leaves empty:

* names in tokenizer_config.json that no tokenizer.json lists (SentencePiece-only and tiktoken
  folders), looked up in the token list itself;
* ids the tokenizer defines (a SentencePiece model's trainer ids; ``<|endoftext|>`` for a tiktoken
  vocabulary, as llama.cpp does for Qwen-1), for folders with no config;
* chat_template.jinja / .json in a folder without tokenizer_config.json (SpecialVocab reads them
  only next to one).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple, Union

import gguf

from .vocab_added import read_json

log = logging.getLogger(__name__)

# The special token kinds GGUF has keys for (tokenizer.ggml.<kind>_token_id), and those it has
# an add_<kind>_token flag for.
SPECIAL_KINDS = ("bos", "eos", "unk", "sep", "pad", "mask", "eot", "eom")
FLAG_KINDS = ("bos", "eos", "sep")

ChatTemplate = Union[str, List[Dict[str, str]]]


def read_specials(model_dir: Path, tokens: List[str], fallback_ids: Mapping[str, int]
                  ) -> Tuple[Dict[str, int], Dict[str, bool], Optional[ChatTemplate]]:
    """(kind → id, kind → add-it flag, chat template) for a vocabulary of ``tokens``."""
    for name in ("config.json", "tokenizer_config.json", "chat_template.json"):
        if (model_dir / name).is_file():
            read_json(model_dir / name)  # SpecialVocab's own parse errors would not name the file
    try:
        sv = gguf.SpecialVocab(model_dir, load_merges=False, n_vocab=len(tokens))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{model_dir}: cannot read the special tokens: {e}") from None
    ids = {k: v for k, v in sv.special_token_ids.items() if k in SPECIAL_KINDS}
    flags = {k: v for k, v in sv.add_special_token.items() if k in FLAG_KINDS}
    template: Optional[ChatTemplate] = sv.chat_template

    config_path = model_dir / "tokenizer_config.json"
    config = read_json(config_path) if config_path.is_file() else {}
    if not (model_dir / "tokenizer.json").is_file():  # else SpecialVocab has resolved the names
        for kind in SPECIAL_KINDS:
            name = config.get(f"{kind}_token")
            if isinstance(name, dict):
                name = name.get("content")
            if kind not in ids and isinstance(name, str) and name in tokens:
                ids[kind] = tokens.index(name)
    for kind, token_id in fallback_ids.items():
        if kind not in ids and 0 <= token_id < len(tokens):
            ids[kind] = token_id

    if template is None and not config_path.is_file():
        template = _template_file(model_dir)
    return ids, flags, template


def _template_file(model_dir: Path) -> Optional[ChatTemplate]:
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    as_json = model_dir / "chat_template.json"
    if as_json.is_file():
        value = read_json(as_json).get("chat_template")
        if isinstance(value, (str, list)):
            return value
    return None
