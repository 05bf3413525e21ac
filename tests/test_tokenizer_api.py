"""The Python Tokenizer API: special-token flags, BOS/EOS overrides, streaming, bad input.
(Token-for-token parity with Hugging Face is in test_tokenizer_bpe.py / test_tokenizer_spm.py.)"""


import gguf
import pytest

import ember
from conftest import finish_gguf


@pytest.fixture(scope="module")
def smol(smollm2_path):
    return ember.Tokenizer.from_gguf(smollm2_path)


@pytest.fixture(scope="module")
def gemma(gemma3_path):
    return ember.Tokenizer.from_gguf(gemma3_path)


def test_properties(smol, gemma):
    assert (smol.model, smol.vocab_size, smol.bos_id, smol.eos_id) == ("gpt2", 49152, 1, 2)
    assert (gemma.model, gemma.vocab_size, gemma.bos_id, gemma.eos_id) == ("llama", 262144, 2, 1)
    assert smol.id_to_token(1) == "<|im_start|>" and gemma.id_to_token(2) == "<bos>"
    assert "Tokenizer(gpt2" in repr(smol)


def test_special_tokens_and_flags(smol, gemma):
    text = "<|im_start|>user\nhi<|im_end|>"
    parsed = smol.encode(text, parse_special=True)
    assert parsed[0] == 1 and parsed[-1] == 2
    plain = smol.encode(text)
    assert 1 not in plain and 2 not in plain and smol.decode(plain) == text
    assert smol.decode(parsed) == text
    assert smol.decode(parsed, skip_special=True) == "user\nhi"
    # Gemma adds BOS by default (add_bos_token = true in the file); overrides win
    ids = gemma.encode("Hello")
    assert ids[0] == 2
    assert gemma.encode("Hello", add_special=False)[0] != 2
    assert gemma.encode("Hello", add_bos=False) == ids[1:]
    assert gemma.encode("Hello", add_eos=True)[-1] == 1
    assert smol.encode("Hello", add_bos=True)[0] == 1


def test_streaming_pieces_are_whole_characters(smol, gemma):
    for tok in (smol, gemma):
        text = "emoji 👨‍👩‍👧 and 日本語 and é"
        ids = tok.encode(text, add_special=False)
        s = tok.stream()
        pieces = [s.push(i) for i in ids] + [s.flush()]
        assert "".join(pieces) == tok.decode(ids) == text
        assert all("\ufffd" not in p for p in pieces)
        raw = b"".join(tok.token_to_piece(i) for i in ids)
        assert raw.decode("utf-8") == text


def test_bad_input(smol, tmp_path):
    with pytest.raises(ValueError, match="unpaired surrogate"):
        smol.encode("bad \ud800 text")
    with pytest.raises(TypeError):
        smol.encode(b"bytes")
    with pytest.raises(ValueError, match="out of range"):
        smol.decode([1, 49152])
    with pytest.raises(ValueError, match="out of range"):
        smol.decode([-1])
    with pytest.raises(TypeError):
        smol.decode("abc")
    with pytest.raises(TypeError):
        smol.decode([1.5])
    with pytest.raises(ValueError, match="out of range"):
        smol.token_to_piece(10**6)
    with pytest.raises(ValueError, match="out of range"):
        smol.stream().push(49152)
    assert smol.encode("") == [] and smol.decode([]) == ""

    # a GGUF with no vocabulary, and ones with a broken vocabulary
    def vocab_file(name, fill):
        path = tmp_path / name
        w = gguf.GGUFWriter(str(path), "llama")
        fill(w)
        finish_gguf(w)
        return path

    def small_bpe(w, types=None, bos=None):
        w.add_tokenizer_model("gpt2")
        w.add_token_list(["a", "b"])
        w.add_token_merges(["a b"])
        if types is not None:
            w.add_token_types(types)
        if bos is not None:
            w.add_bos_token_id(bos)

    with pytest.raises(ember.GGUFError, match="tokenizer.ggml.model"):
        ember.Tokenizer.from_gguf(vocab_file("novocab.gguf", lambda w: None))
    with pytest.raises(ember.GGUFError, match="has 3 entries for 2 tokens"):
        ember.Tokenizer.from_gguf(vocab_file("badvocab.gguf", lambda w: small_bpe(w, types=[1, 1, 1])))
    with pytest.raises(ember.GGUFError, match="outside the vocabulary"):
        ember.Tokenizer.from_gguf(vocab_file("badbos.gguf", lambda w: small_bpe(w, bos=7)))
    with pytest.raises(FileNotFoundError):
        ember.Tokenizer.from_gguf(tmp_path / "missing.gguf")


def test_arbitrary_bytes_round_trip_at_the_byte_level(smollm2_path, gemma3_path):
    """Invalid UTF-8 reaches the C++ core only through the binding; it must neither crash nor
    lose bytes: byte-level BPE and byte-fallback SentencePiece represent any byte string."""
    import random

    rng = random.Random(5)
    for path in (smollm2_path, gemma3_path):
        core = ember._core.Tokenizer(str(path))
        # SmolLM2's vocabulary lacks 21 of the 256 byte symbols; like Hugging Face (and llama.cpp)
        # the tokenizer drops those bytes, so only bytes the vocabulary can spell are drawn.
        spellable = [b for b in range(256) if core.encode(bytes([b]), False, False)]
        assert len(spellable) >= 200
        for _ in range(300):
            data = bytes(rng.choice(spellable) for _ in range(rng.randrange(0, 40)))
            ids = core.encode(data, False, False)
            assert all(0 <= i < core.vocab_size for i in ids)
            assert b"".join(core.token_bytes(i) for i in ids) == data
            assert core.decode(ids) == data.decode("utf-8", "replace")
