"""ember.Model's generation API: generate / stream / complete / chat, finish reasons, stop strings,
seeds, max_tokens and the context limit, threads, and its arguments."""

import threading

import numpy as np
import pytest

import ember
from ember.chat import ChatTemplateError


@pytest.fixture(scope="module")
def smol(smollm2_path):
    return ember.Model(smollm2_path, n_ctx=512, n_seq_max=2, verbose=False)


@pytest.fixture(scope="module")
def tiny(tiny_gguf):
    return ember.Model(tiny_gguf, n_ctx=48, verbose=False)


PROMPT = "The capital of France is"


def test_generate_stream_and_complete_agree(smol):
    text = smol.generate(PROMPT, max_tokens=24, temperature=0)
    assert isinstance(text, str) and "Paris" in text
    pieces = list(smol.stream(PROMPT, max_tokens=24, temperature=0))
    assert all(isinstance(p, str) and p for p in pieces) and len(pieces) > 3
    assert "".join(pieces) == text
    c = smol.complete(PROMPT, max_tokens=24, temperature=0)
    assert c.text == text
    assert c.usage.prompt_tokens == len(smol.tokenize(PROMPT)) == len(c.prompt_token_ids)
    assert c.usage.completion_tokens == len(c.token_ids)
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens
    assert c.timings.prompt_seconds > 0 and c.timings.generate_seconds > 0
    assert smol.detokenize([t for t in c.token_ids if not smol._engine.is_eog(t)]) == c.text
    # a prompt given as token ids is the same prompt
    assert smol.generate(smol.tokenize(PROMPT), max_tokens=24, temperature=0) == text


def test_finish_reasons(smol, tiny):
    c = smol.complete(PROMPT, max_tokens=5, temperature=0)
    assert c.finish_reason == "length" and len(c.token_ids) == 5
    # SmolLM2 ends its chat turns with <|im_end|>, its EOS: "stop", and no trace of it in the text
    ids = smol.tokenize(smol.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}]))
    c = smol.complete(ids, max_tokens=200, temperature=0)
    assert c.finish_reason == "stop"
    assert smol._engine.is_eog(c.token_ids[-1]) and "<|im_end|>" not in c.text
    assert smol.complete(PROMPT, max_tokens=0).text == ""
    assert smol.complete(PROMPT, max_tokens=0).finish_reason == "length"
    # no max_tokens: until the context is full (the tiny model never says EOS when told to ignore it)
    prompt = tiny.tokenize("The quick brown fox")
    c = tiny.complete(prompt, max_tokens=None, temperature=0, ignore_eos=True)
    assert c.finish_reason == "length"
    assert len(prompt) + len(c.token_ids) == tiny.n_ctx + 1  # the last sampled token needs no slot


def test_context_limit(tiny):
    ids = tiny.tokenize("The quick brown fox jumps over the lazy dog. " * 20)
    assert len(ids) > tiny.n_ctx
    with pytest.raises(ValueError, match=r"prompt has \d+ tokens, more than the context size \(n_ctx = 48\)"):
        tiny.generate(ids)
    with pytest.raises(ValueError, match="context size"):
        tiny.logits(ids)
    c = tiny.complete(ids[:48], max_tokens=10, temperature=0, ignore_eos=True)  # exactly n_ctx
    assert c.finish_reason == "length" and len(c.token_ids) == 1
    assert tiny.kv_usage()["blocks_used"] == 0


def test_stop_strings(smol):
    full = smol.complete(PROMPT, max_tokens=30, temperature=0)
    # stop at a word in the middle of the greedy text; it and everything after are left out
    word = full.text.split()[3]
    at = full.text.index(word)
    for stop in (word, [word, "zzz-not-there"], ["zzz", word[:2]]):
        c = smol.complete(PROMPT, max_tokens=30, temperature=0, stop=stop)
        first = min(full.text.find(s) for s in ([stop] if isinstance(stop, str) else stop) if s in full.text)
        assert c.text == full.text[:first] and c.finish_reason == "stop", stop
    # streaming never lets out any part of the stop string, even when it spans tokens
    stop = full.text[at - 2:at + 3]
    pieces = list(smol.stream(PROMPT, max_tokens=30, temperature=0, stop=stop))
    assert "".join(pieces) == full.text[:full.text.index(stop)]
    # a stop string that never appears changes nothing
    assert smol.complete(PROMPT, max_tokens=30, temperature=0, stop="\x00").text == full.text


def test_seeds_reproduce(smol):
    kw = dict(max_tokens=24, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)
    a = smol.complete("Once upon a time", seed=1234, **kw)
    b = smol.complete("Once upon a time", seed=1234, **kw)
    c = smol.complete("Once upon a time", seed=4321, **kw)
    assert a.token_ids == b.token_ids and a.seed == 1234
    assert a.token_ids != c.token_ids
    d = smol.complete("Once upon a time", **kw)  # seed=None draws one and reports it
    assert smol.complete("Once upon a time", seed=d.seed, **kw).token_ids == d.token_ids


def test_penalties_change_the_text(smol):
    plain = smol.complete("1, 2, 3, 1, 2, 3, 1, 2, 3,", max_tokens=12, temperature=0)
    pen = smol.complete("1, 2, 3, 1, 2, 3, 1, 2, 3,", max_tokens=12, temperature=0, repeat_penalty=1.5)
    assert plain.token_ids != pen.token_ids
    freq = smol.complete("1, 2, 3, 1, 2, 3, 1, 2, 3,", max_tokens=12, temperature=0, frequency_penalty=1.5)
    assert plain.token_ids != freq.token_ids


def test_chat(smol, gemma3_path):
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    text = smol.chat(messages, temperature=0, max_tokens=32)
    assert isinstance(text, str) and "Paris" in text
    assert "".join(smol.chat(messages, temperature=0, max_tokens=32, stream=True)) == text
    prompt = smol.apply_chat_template(messages)
    assert prompt == ember.Tokenizer.from_gguf(smol.path).apply_chat_template(messages)
    assert prompt.endswith("<|im_start|>assistant\n")
    gemma = ember.Model(gemma3_path, n_ctx=64, verbose=False)
    with pytest.raises(ChatTemplateError, match="no chat template"):
        gemma.chat(messages)


def test_logits_shape_and_consistency(tiny):
    ids = tiny.tokenize("The quick brown fox jumps")
    out = tiny.logits(ids)
    assert out.dtype == np.float32 and out.shape == (len(ids), tiny.n_vocab)
    s = tiny.new_sequence()
    try:
        last = tiny.decode(ids, range(len(ids)), [s] * len(ids), [i == len(ids) - 1 for i in range(len(ids))])
    finally:
        tiny.free_sequence(s)
    np.testing.assert_array_equal(out[-1], last[0])


def test_streams_interleave_across_threads(smol):
    """Two threads stream at once on one model (n_seq_max=2): each gets what it gets alone."""
    prompts = ["The capital of France is", "def fibonacci(n):"]
    want = [smol.generate(p, max_tokens=16, temperature=0) for p in prompts]
    got = [None, None]
    errors = []

    def run(i):
        try:
            got[i] = "".join(smol.stream(prompts[i], max_tokens=16, temperature=0))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and got == want


def test_metadata_and_info(smol):
    assert smol.metadata["general.architecture"] == "llama"
    assert smol.info["n_vocab"] == 49152 and smol.info["n_layer"] == 30
    assert "KV cache" in smol.load_report()
    assert smol.n_ctx == 512


def test_bad_arguments(tiny, tiny_gguf):
    bad = [
        (dict(temperature=-1), ValueError, "temperature"),
        (dict(temperature=float("nan")), ValueError, "temperature"),
        (dict(top_p=1.5), ValueError, "top_p"),
        (dict(top_p=0), ValueError, "top_p"),
        (dict(min_p=-0.1), ValueError, "min_p"),
        (dict(repeat_penalty=0), ValueError, "repeat_penalty"),
        (dict(repeat_last_n=-2), ValueError, "repeat_last_n"),
        (dict(max_tokens=-1), ValueError, "max_tokens"),
        (dict(max_tokens="10"), TypeError, "max_tokens"),
        (dict(top_k=1.5), TypeError, "top_k"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=2**64), ValueError, "seed"),
        (dict(stop=[1]), TypeError, "stop"),
        (dict(stop=""), ValueError, "stop strings must not be empty"),
        (dict(temprature=0.5), TypeError, "temprature"),
    ]
    for kwargs, exc, match in bad:
        with pytest.raises(exc, match=match):
            tiny.generate("hello", **kwargs)
    with pytest.raises(TypeError, match="prompt"):
        tiny.generate(123)
    with pytest.raises(ValueError, match="empty"):
        tiny.generate([])
    with pytest.raises(ValueError, match="out of range"):
        tiny.generate([1, tiny.n_vocab])
    with pytest.raises(TypeError):
        tiny.generate([1, "2"])
    with pytest.raises(ValueError, match="out of range"):
        tiny.logits([-5])
    with pytest.raises(ValueError, match="out of range"):
        tiny.detokenize([10**6])
    with pytest.raises(TypeError):
        tiny.tokenize(b"bytes")
    assert tiny.kv_usage()["sequences"] == 0, "a refused request holds nothing"
