"""SentencePiece tokenization (cpp/tokenizer/spm.cpp), token for token against the references.

1. Gemma 3 (262,144 pieces): ember against the Hugging Face tokenizer transformers builds from the
   same GGUF, on the whole shared corpus, with special tokens added or not and parsed or not; text
   must round-trip through decode, and streaming decode must equal the whole decode.
2. SentencePiece models trained here (BPE and unigram, byte fallback on and off, dummy prefix on
   and off) and the small models shipped in sentencepiece's source distribution, converted to
   GGUF with ember.convert, against ``SentencePieceProcessor.encode``.

A GGUF "llama" vocabulary means llama.cpp's algorithm: merge the adjacent pair making the best
scoring piece. That is SentencePiece's own BPE encoder, so BPE models must match exactly. A unigram
model is written the same way and nothing in the file says it was unigram, so it is tokenized by
merging too, not by SentencePiece's Viterbi search: for those we require the ids of an independent
implementation of score merging (test_convert_vocab.spm_tokenizer) and the same text back, and
report how many strings happen to tokenize exactly as SentencePiece does.
"""

from __future__ import annotations

import glob
import io
import subprocess
import sys
import tarfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import gguf
import pytest

from ember import _core, models
from ember.convert.vocab import add_vocab, load_vocab
from test_convert_vocab import hf_folder, spm_tokenizer
from tokenizer_corpus import corpus
from conftest import finish_gguf

CORPUS = corpus()
USER_DEFINED = ["<tool>", "<|sep|>"]
CONTROL = ["<ctl>"]
# Strings around the trained models' own added pieces, and pieces that must stay text.
EXTRA = ["<tool>hello", "hello<tool>", " <tool>", "<tool>", "<|sep|><tool>x", "<tool> <tool>", "x<tool>  y",
         "a<ctl>b", "<ctl>", "<s>hi</s>", "<unk>", "<0x41>", "\u00ff\u00ff \U0001d539\U0001d539 x"]


def mismatch_report(texts: Sequence[str], got: List[List[int]], want: List[List[int]],
                    piece: Callable[[int], str], what: str) -> str:
    bad = [i for i in range(len(texts)) if got[i] != want[i]]
    if not bad:
        return ""
    i = bad[0]
    return (f"{what}: {len(texts) - len(bad)}/{len(texts)} strings identical "
            f"({100 * (len(texts) - len(bad)) / len(texts):.2f}%); first difference {texts[i]!r}:\n"
            f"  ember {[piece(t) for t in got[i]]}\n  want  {[piece(t) for t in want[i]]}")


def check_streaming(tok, ids_per_text: List[List[int]]) -> None:
    for ids in ids_per_text:
        stream = _core.StreamDecoder(tok)
        pieces = [stream.push(i) for i in ids]
        assert "".join(pieces) + stream.flush() == tok.decode(ids), ids


# -- (1) Gemma 3 against transformers -------------------------------------------------------------

@pytest.fixture(scope="module")
def gemma(gemma3_path):
    from transformers import AutoTokenizer

    return _core.Tokenizer(str(gemma3_path)), AutoTokenizer.from_pretrained(hf_folder(gemma3_path))


@pytest.mark.slow
@pytest.mark.parametrize("add_special", [True, False], ids=["add", "noadd"])
@pytest.mark.parametrize("parse_special", [True, False], ids=["parse", "noparse"])
def test_gemma3_matches_hf(gemma, add_special, parse_special):
    tok, hf = gemma
    want = hf(CORPUS, add_special_tokens=add_special, split_special_tokens=not parse_special)["input_ids"]
    got = [tok.encode(s.encode(), add_special, parse_special) for s in CORPUS]
    assert got == want, mismatch_report(CORPUS, got, want, hf.convert_ids_to_tokens, "Gemma 3 vs HF")
    assert sum(map(len, got)) > 20 * len(CORPUS)  # the corpus really was tokenized

    # lossless: no normalization, no dummy prefix, byte fallback for everything else
    for s, ids in zip(CORPUS, got):
        text = tok.decode(ids, skip_special=add_special and not parse_special)
        assert text == (s if not add_special or not parse_special else "<bos>" + s), s
    check_streaming(tok, got)


@pytest.mark.slow
def test_gemma3_space_runs_longest_first(gemma):
    """Runs of 2-31 spaces are user-defined pieces: matched longest first, as SentencePiece's
    prefix matcher does (test_user_defined_space_runs shows it). transformers' GGUF import keeps
    them as merges instead, which agrees up to 31 spaces and splits longer runs elsewhere."""
    tok, hf = gemma
    for n in range(2, 32):
        s = " " * n + "x"
        assert tok.encode(s.encode(), False, False) == hf(s, add_special_tokens=False)["input_ids"] == [136 + n, 236781]
    assert tok.encode((" " * 40 + "x").encode(), False, False) == [136 + 31, 136 + 9, 236781]


@pytest.mark.slow
def test_gemma3_speed(gemma):
    """About 1 MB of text in well under a second (a guard against quadratic behaviour)."""
    tok, _ = gemma
    text = "\n".join(corpus(8000, seed=5))
    data = (text * (1_000_000 // len(text.encode()) + 1)).encode()[:1_000_000]
    data = data.decode("utf-8", "ignore").encode()
    start = time.perf_counter()
    ids = tok.encode(data, False, False)
    seconds = time.perf_counter() - start
    assert seconds < 2.0, f"{len(data)} bytes took {seconds:.2f} s ({len(ids) / seconds:,.0f} tokens/s)"
    assert tok.decode(ids) == data.decode()


# -- (2) models trained with sentencepiece --------------------------------------------------------

TRAIN_LINES = [s for s in corpus(600, seed=99) if s.strip()]


def train(model_type: str, byte_fallback: bool, add_dummy_prefix: bool, **extra) -> bytes:
    import sentencepiece as spm

    out = io.BytesIO()
    # No normalization: a GGUF carries none, so only the segmentation itself is compared.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TRAIN_LINES), model_writer=out, model_type=model_type, vocab_size=1000,
        byte_fallback=byte_fallback, add_dummy_prefix=add_dummy_prefix,
        user_defined_symbols=extra.pop("user_defined_symbols", USER_DEFINED), control_symbols=CONTROL,
        normalization_rule_name="identity", remove_extra_whitespaces=False, hard_vocab_limit=False,
        character_coverage=0.995, num_threads=1, minloglevel=2, **extra)
    return out.getvalue()


def to_gguf(model_proto: bytes, folder: Path):
    """Convert a tokenizer.model with ember.convert into a vocabulary-only GGUF; open it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(model_proto)
    vocab = load_vocab(folder)
    writer = gguf.GGUFWriter(str(folder / "vocab.gguf"), arch="llama")
    add_vocab(writer, vocab)
    finish_gguf(writer)
    return _core.Tokenizer(str(folder / "vocab.gguf")), vocab


def compare_with_sentencepiece(model_proto: bytes, folder: Path, exact: bool) -> float:
    """ember vs SentencePieceProcessor on the corpus; returns the share of identical strings."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=model_proto)
    tok, vocab = to_gguf(model_proto, folder)
    texts = CORPUS + EXTRA
    got = [tok.encode(s.encode(), False, False) for s in texts]
    want = [sp.encode(s) for s in texts]
    report = mismatch_report(texts, got, want, sp.id_to_piece, f"{folder.name} vs sentencepiece")
    if exact:
        assert not report, report
        bos = sp.bos_id()
        assert all(tok.encode(s.encode(), True, False) == [bos] + w for s, w in zip(texts[:200], want[:200]))
    else:
        # Score merging, checked against an independent implementation of it where that applies
        # (it knows no user-defined pieces and needs byte pieces for unknown characters).
        if sp.IsByte(sp.PieceToId("<0x41>")):
            merge = spm_tokenizer(vocab.tokens, vocab.scores, bool(vocab.add_space_prefix))
            plain = [i for i, s in enumerate(texts) if s and not any(u in s for u in USER_DEFINED)]
            ref = [merge(texts[i]) for i in plain]
            r = mismatch_report([texts[i] for i in plain], [got[i] for i in plain], ref, sp.id_to_piece,
                                f"{folder.name} vs score merging in Python")
            assert not r, r
    # The same text comes back (where the vocabulary has no unknown token in the way).
    unk = sp.unk_id()
    for s, ids, w in zip(texts, got, want):
        if unk not in ids:
            assert tok.decode(ids) == s, (s, ids)
        if unk not in w:
            assert tok.decode(ids) == sp.decode(w), s
    check_streaming(tok, got)
    return sum(g == w for g, w in zip(got, want)) / len(texts)


@pytest.mark.parametrize("byte_fallback", [True, False], ids=["bytes", "nobytes"])
@pytest.mark.parametrize("add_dummy_prefix", [True, False], ids=["prefix", "noprefix"])
@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_trained_sentencepiece(tmp_path, model_type, byte_fallback, add_dummy_prefix, record_property):
    start = time.perf_counter()
    proto = train(model_type, byte_fallback, add_dummy_prefix)
    assert time.perf_counter() - start < 5
    rate = compare_with_sentencepiece(proto, tmp_path / f"{model_type}-{byte_fallback}-{add_dummy_prefix}",
                                      exact=model_type == "bpe")
    record_property("sentencepiece_match", rate)
    print(f"{model_type} byte_fallback={byte_fallback} add_dummy_prefix={add_dummy_prefix}: "
          f"{100 * rate:.1f}% of {len(CORPUS) + len(EXTRA)} strings identical to sentencepiece")
    if model_type == "bpe":
        assert rate == 1.0


def test_user_defined_space_runs(tmp_path):
    """User-defined pieces made of spaces (as Gemma has) match longest first in both."""
    proto = train("bpe", True, False, user_defined_symbols=["\u2581" * n for n in range(2, 6)])
    assert compare_with_sentencepiece(proto, tmp_path / "runs", exact=True) == 1.0


def hand_made_model(pieces, byte_fallback: bool) -> bytes:
    """A SentencePiece BPE model with exactly these (piece, type, score) entries after <unk>, <s>, </s>."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.byte_fallback = byte_fallback
    m.trainer_spec.unk_id, m.trainer_spec.bos_id, m.trainer_spec.eos_id, m.trainer_spec.pad_id = 0, 1, 2, -1
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = False
    m.normalizer_spec.remove_extra_whitespaces = False
    T = pb.ModelProto.SentencePiece
    entries = [("<unk>", T.UNKNOWN, 0.0), ("<s>", T.CONTROL, 0.0), ("</s>", T.CONTROL, 0.0)] + list(pieces)
    entries += [(f"<0x{b:02X}>", T.BYTE, 0.0) for b in range(256)] if byte_fallback else []
    for text, kind, score in entries:
        p = m.pieces.add()
        p.piece, p.type, p.score = text, kind, score
    return m.SerializeToString()


@pytest.mark.parametrize("byte_fallback", [True, False], ids=["bytes", "nobytes"])
def test_merge_rules_on_a_hand_made_vocabulary(tmp_path, byte_fallback):
    """What merges may produce, where the trained models never go: pieces of CONTROL and BYTE type
    are never merged into (text stays text), an UNUSED piece is merged through and then split back,
    a character that is no piece still merges into one that is, and unknown runs fuse."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    T = pb.ModelProto.SentencePiece
    normal = ["a", "b", "x", "<", "c", "t", "l", ">", "<c", "tl", "tl>", "0", "4", "1", "<0", "1>", "\u2581"]
    pieces = [(p, T.NORMAL, -1.0 - i) for i, p in enumerate(normal)]
    pieces += [("\u00e9a", T.NORMAL, -0.5),   # é is no piece
               ("<ctl>", T.CONTROL, 0.0),     # "<c" + "tl>" would make it
               ("<0x4", T.NORMAL, -0.7), ("<0x", T.NORMAL, -0.8),
               ("ab", T.UNUSED, -0.1), ("abx", T.NORMAL, -0.2)]
    pieces = list({p[0]: p for p in pieces}.values())  # one entry per piece
    proto = hand_made_model(pieces, byte_fallback)
    sp = spm.SentencePieceProcessor(model_proto=proto)
    tok, _ = to_gguf(proto, tmp_path / "hand")
    texts = ["\u00e9a", "a\u00e9a", "\u00e9\u00e9a", "\u00e9", "<ctl>", "<0x41>", "<0x4", "ab", "abx", "abab",
             "xabx ab", "\u00e9x\u00e9\u00e9 \u00e9", "a b  c"]
    got = [tok.encode(s.encode(), False, False) for s in texts]
    want = [sp.encode(s) for s in texts]
    assert got == want, mismatch_report(texts, got, want, sp.id_to_piece, "hand-made vs sentencepiece")
    assert got[4] == [sp.PieceToId("<c"), sp.PieceToId("tl>")]
    assert got[5] == [sp.PieceToId("<0x4"), sp.PieceToId("1>")]
    assert got[8] == [sp.PieceToId("abx")] and got[7] == [sp.PieceToId("a"), sp.PieceToId("b")]


def test_unknown_characters_without_byte_fallback(tmp_path):
    import sentencepiece as spm

    proto = train("bpe", False, False)
    sp = spm.SentencePieceProcessor(model_proto=proto)
    tok, _ = to_gguf(proto, tmp_path / "unk")
    text = "x\U0001d539\U0001d539 \U0001d539y\xff"  # unknown runs fuse into one <unk>, as in sentencepiece
    assert tok.encode(text.encode(), False, False) == sp.encode(text)
    assert tok.encode(text.encode(), False, False).count(sp.unk_id()) == 3
    assert tok.encode(b"\xff\xfeok", False, False)[0] == sp.unk_id()  # invalid UTF-8 too


def test_no_byte_tokens_and_no_unknown_token_is_an_error(tmp_path):
    path = tmp_path / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(["a", "b", "ab"])
    w.add_token_scores([0.0, 0.0, 1.0])
    w.add_token_types([1, 1, 1])
    w.add_add_space_prefix(False)
    finish_gguf(w)
    tok = _core.Tokenizer(str(path))
    assert tok.encode(b"abab", False, False) == [2, 2]
    with pytest.raises(ValueError, match=r"cannot encode .*<0xC3><0xA9>"):
        tok.encode("a\u00e9".encode(), False, False)


# -- sentencepiece's own test models (from its source distribution, fetched once) -----------------

def sdist_models() -> Dict[str, bytes]:
    wheels = models.cache_dir() / "wheels"
    found = sorted(glob.glob(str(wheels / "sentencepiece-*.tar.gz")))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        for isolation in (["--no-build-isolation"], []):  # pip reads the sdist's metadata either way
            try:
                subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                                *isolation, "--disable-pip-version-check", "-q", "--timeout", "15", "--retries", "1",
                                "-d", str(wheels), f"sentencepiece=={version('sentencepiece')}"],
                               capture_output=True, timeout=120)
            except subprocess.TimeoutExpired:
                pass
            found = sorted(glob.glob(str(wheels / "sentencepiece-*.tar.gz")))
            if found:
                break
    if not found:
        pytest.skip("sentencepiece's source distribution is not cached and cannot be downloaded")
    out = {}
    with tarfile.open(found[-1]) as tar:
        for member in tar.getmembers():
            if member.name.endswith(".model") and "/test/" in member.name:
                out[Path(member.name).stem] = tar.extractfile(member).read()
    return out


def without_normalizer(model_proto: bytes) -> bytes:
    """The same model with SentencePiece's normalizer (NFKC, whitespace folding) switched off:
    a GGUF has no normalizer, so text must be compared as is."""
    from sentencepiece import sentencepiece_model_pb2

    m = sentencepiece_model_pb2.ModelProto.FromString(model_proto)
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.precompiled_charsmap = b""
    m.normalizer_spec.remove_extra_whitespaces = False
    return m.SerializeToString()


@pytest.mark.parametrize("name, exact", [("botchan_en_bpe_1000", True), ("botchan_en_unigram_1000", False),
                                         ("kyoto_ja_unigram_8000", False)])
def test_sentencepiece_sdist_models(tmp_path, name, exact, record_property):
    protos = sdist_models()
    assert name in protos, sorted(protos)
    rate = compare_with_sentencepiece(without_normalizer(protos[name]), tmp_path / name, exact)
    record_property("sentencepiece_match", rate)
    print(f"{name}: {100 * rate:.1f}% of {len(CORPUS) + len(EXTRA)} strings identical to sentencepiece")
