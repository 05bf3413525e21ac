"""Naming a byte-level BPE pre-tokenizer the way llama.cpp does (``tokenizer.ggml.pre``).

llama.cpp cannot run a tokenizer.json's pre-tokenizer; it has a fixed set of built-in ones and
the GGUF names which to use. Its converter picks the name by tokenizing a fixed check text with
the model's own tokenizer and looking the SHA-256 of the id list up in a table (``chkhsh``), so
the name depends on behaviour, not on how the JSON happens to be spelled. We do the same, with
the ``tokenizers`` (or ``tiktoken``) library doing the encoding, in two steps:

1. **Known hash.** ``str(ids)`` of the check text, special tokens added as the tokenizer's post-
   processor adds them (transformers' ``encode()`` default), hashed and looked up in
   ``KNOWN_HASHES``: hashes from llama.cpp's table for the families ember cares about. Checked
   here against real tokenizers: SmolLM2 → smollm, Llama 3.2 → llama-bpe, Qwen3 → qwen2,
   cl100k_base → dbrx (llama.cpp's name for it: DBRX uses cl100k).
2. **Same regexes.** A fine-tune that changed the vocabulary or the BOS token gets a new hash
   while keeping its family's pre-tokenizer. If the pre-tokenizer's split regexes, in order, are
   exactly those of a family in ``FAMILIES`` (how llama.cpp's runtime splits for that name), that
   name is used and a warning says so. The name then may differ from the one llama.cpp's table
   would give (e.g. starcoder vs smollm share regexes), never the splitting.

Anything else is an error, as in llama.cpp's converter: a wrong pre-tokenizer does not fail, it
silently degrades generation. ``load_vocab(..., pre="default")`` (or any name) overrides it.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Dict, List, Optional, Sequence

log = logging.getLogger(__name__)

# llama.cpp's check text (convert_hf_to_gguf_update.py): whitespace runs, emoji with ZWJ and
# variation selectors, digit runs, Khmer, CJK, Cyrillic, quote and contraction cases.
CHECK_TEXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n"
    "\U0001f680 (normal) \U0001f636\u200d\U0001f32b\ufe0f (multiple emojis concatenated) "
    "\u2705 \U0001f999\U0001f999 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
    "\u1780\u17b6\u1793\u17cb\u178f\u17c2\u1796\u17b7\u179f\u17c1\u179f\u17a2\u17b6\u1785\U0001f601 "
    "?\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e ------======= "
    "\u043d\u0435\u0449\u043e \u043d\u0430 \u0411\u044a\u043b\u0433\u0430\u0440\u0441\u043a\u0438 "
    "''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? "
    "'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)

# chkhsh → llama.cpp's name (model the hash was taken from). Facts from llama.cpp's table.
KNOWN_HASHES: Dict[str, str] = {
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",            # openai-community/gpt2
    "fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085": "phi-2",            # microsoft/phi-2
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",        # meta-llama/Meta-Llama-3-8B
    "c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d": "smaug-bpe",        # abacusai/Smaug-Llama-3-70B
    "d353350c764d8c3b39c763113960e4fb4919bea5fbf208a0e3b22e8469dc7406": "llama4",           # Llama-4-Scout-17B-16E
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",            # Qwen/Qwen1.5-7B
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",            # Qwen/Qwen3-Embedding-0.6B
    "b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5": "deepseek-r1-qwen", # DeepSeek-R1-Distill-Qwen-1.5B
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",           # HuggingFaceTB/SmolLM-135M
    "35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34": "starcoder",        # bigcode/starcoder2-3b
    "6221ad2852e85ce96f791f476e0b390cf9b474c9e3d1362f53a24a06dc8220ff": "refact",           # smallcloudai/Refact-1_6-base
    "9c2227e4dd922002fb81bde4fc02b0483ca4f12911410dee2255e4987644e3f8": "command-r",        # CohereForAI/c4ai-command-r-v01
    "049ecf7629871e3041641907f3de7c733e4dbfdc736f57d882ba0b0845599754": "deepseek-llm",     # deepseek-llm-7b-base
    "347715f544604f9118bb75ed199f68779f423cabb20db6de6f31b908d04d7821": "deepseek-coder",   # deepseek-coder-6.7b-base
    "877081d19cf6996e2c4ff0e1236341e9b7bde288f5311a56a937f0afbbb3aeb5": "deepseek-v3",      # deepseek-ai/DeepSeek-V3
    "a8594e3edff7c29c003940395316294b2c623e09894deebbc65f33f1515df79e": "dbrx",             # databricks/dbrx-base (cl100k_base)
    "ccc2ef013c104be7bae2965776d611e1d7a8a2a9c547dd93a682c9a9fc80352e": "gpt-4o",           # Xenova/gpt-4o (o200k_base)
    "63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e": "tekken",           # Mistral-Nemo-Base-2407
    # llama.cpp lists this hash for both mpt-7b and OLMo-1.7; its later entry, "olmo", wins.
    "b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166": "olmo",
}

# The split regexes of a pre-tokenizer, as tokenizer.json spells them.
GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"  # ByteLevel(use_regex)
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")  # digits one by one
DIGIT_REGEX = r"\p{N}"    # Digits(individual_digits=True)
DIGITS_REGEX = r"\p{N}+"  # Digits(individual_digits=False)

# Name → the regexes llama.cpp splits with for it (its trailing catch-all "\s+" aside).
# deepseek-llm is known by hash only: its letter class lists hundreds of code points, some of
# which (U+1F7D, U+2126, ...) Unicode normalization silently swaps for look-alikes, so a copy
# in source cannot be trusted to be byte-exact.
FAMILIES: Dict[str, List[str]] = {
    "gpt-2": [GPT2_REGEX],
    "smollm": [DIGIT_REGEX, GPT2_REGEX],
    "llama-bpe": [LLAMA3_REGEX],
    "qwen2": [QWEN2_REGEX],
}

# Normalizers that do not change what the pre-tokenizer sees for the families above.
_HARMLESS_NORMALIZERS = (None, "NFC")


def check_hash(ids: Sequence[int]) -> str:
    """llama.cpp's chkhsh of the ids a tokenizer gives for CHECK_TEXT."""
    return hashlib.sha256(str(list(ids)).encode()).hexdigest()


def split_regexes(pre_tokenizer: Optional[dict], normalizer: Optional[dict] = None) -> Optional[List[str]]:
    """The ordered split regexes of a tokenizer.json pre-tokenizer, or None if it does more
    than split by regexes and map bytes (Metaspace, Whitespace, a prefix space, a normalizer
    that rewrites text, ...)."""
    if (normalizer or {}).get("type") not in _HARMLESS_NORMALIZERS:
        return None
    steps = _flatten(pre_tokenizer)
    regexes: List[str] = []
    for step in steps:
        kind = step.get("type")
        if kind == "ByteLevel":
            if step.get("add_prefix_space"):
                return None
            if step.get("use_regex", True):
                regexes.append(GPT2_REGEX)
        elif kind == "Split":
            pattern = step.get("pattern") or {}
            if step.get("behavior") != "Isolated" or step.get("invert") or "Regex" not in pattern:
                return None
            regexes.append(pattern["Regex"])
        elif kind == "Digits":
            regexes.append(DIGIT_REGEX if step.get("individual_digits") else DIGITS_REGEX)
        else:
            return None
    return regexes


def _flatten(pre_tokenizer: Optional[dict]) -> List[dict]:
    if not pre_tokenizer:
        return []
    if pre_tokenizer.get("type") == "Sequence":
        return [s for p in pre_tokenizer.get("pretokenizers", []) for s in _flatten(p)]
    return [pre_tokenizer]


def identify(ids: Sequence[int], regexes: Optional[List[str]], source: str) -> str:
    """The tokenizer.ggml.pre name; ValueError when neither the hash nor the regexes are known."""
    chkhsh = check_hash(ids)
    name = KNOWN_HASHES.get(chkhsh)
    if name is not None:
        log.info("%s: pre-tokenizer %r (chkhsh %s)", source, name, chkhsh)
        return name
    for family, family_regexes in FAMILIES.items():
        if regexes == family_regexes:
            log.warning("%s: chkhsh %s is not in ember's table, but the pre-tokenizer splits exactly "
                        "like llama.cpp's %r; writing that name", source, chkhsh, family)
            return family
    shown = "not a plain regex split" if regexes is None else repr(regexes)
    raise ValueError(
        f"{source}: BPE pre-tokenizer not recognized (chkhsh {chkhsh}; regexes: {shown}). "
        f"llama.cpp's converter refuses such models too, since a wrong pre-tokenizer silently "
        f"degrades generation; pass pre=NAME to load_vocab to choose one of llama.cpp's names "
        f"(\"default\" is llama.cpp's generic fallback)")
