"""The paged KV cache and the batched forward pass: sequences decoded together give exactly what each
gives alone, fork shares blocks and diverges correctly, freeing returns every block, capacity limits
raise CapacityError and leave the cache as it was."""

import numpy as np
import pytest

import ember
from ember import CapacityError

pytest.importorskip("transformers")
from tiny_models import SAMPLE_TEXT, make_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    from ember.convert import convert

    d = tmp_path_factory.mktemp("kv")
    make_tiny_model("qwen3", d / "hf")
    convert(d / "hf", d / "m.gguf", "f32", progress=False)
    return d / "m.gguf"


def prefill(m, seq, ids, start=0):
    """Decode ids into seq from position `start`; return the logits of the last one."""
    n = len(ids)
    return m.decode(ids, range(start, start + n), [seq] * n, [i == n - 1 for i in range(n)])[0]


def blocks_used(m):
    return m.kv_usage()["blocks_used"]


@pytest.mark.slow
def test_four_prompts_decoded_together_equal_each_alone(smollm2_path):
    """Prefill four prompts of different lengths in one batch, then decode one token of each per
    step: every logit is bit-identical to running the prompt alone, so the greedy tokens are too."""
    m = ember.Model(smollm2_path, n_ctx=256, n_seq_max=4, verbose=False)
    prompts = [m.tokenize(p) for p in ("The capital of France is", "def fibonacci(n):",
                                       "Once upon a time, in a small village by the sea, there lived",
                                       "1, 2, 3, 4,")]
    steps = 12

    def alone(ids):
        s = m.new_sequence()
        rows = [prefill(m, s, ids)]
        out = []
        for _ in range(steps):
            out.append(int(rows[-1].argmax()))
            rows.append(m.decode([out[-1]], [len(ids) + len(out) - 1], [s], [True])[0])
        m.free_sequence(s)
        return out, np.stack(rows[:-1])

    want = [alone(p) for p in prompts]
    seqs = [m.new_sequence() for _ in prompts]
    toks, pos, sid, flag = [], [], [], []
    for s, p in zip(seqs, prompts):
        toks += p
        pos += list(range(len(p)))
        sid += [s] * len(p)
        flag += [False] * (len(p) - 1) + [True]
    rows = m.decode(toks, pos, sid, flag)
    got_tokens = [[] for _ in prompts]
    got_rows = [[r] for r in rows]
    for _ in range(steps):
        nxt = [int(got_rows[i][-1].argmax()) for i in range(len(prompts))]
        for i, t in enumerate(nxt):
            got_tokens[i].append(t)
        rows = m.decode(nxt, [len(p) + len(got_tokens[i]) - 1 for i, p in enumerate(prompts)], seqs, [True] * 4)
        for i, r in enumerate(rows):
            got_rows[i].append(r)
    for i in range(len(prompts)):
        assert got_tokens[i] == want[i][0], f"prompt {i}"
        np.testing.assert_array_equal(np.stack(got_rows[i][:-1]), want[i][1], err_msg=f"prompt {i} logits")
    for s in seqs:
        m.free_sequence(s)
    assert blocks_used(m) == 0


@pytest.mark.parametrize("prompt_len", [16, 21])  # a whole number of blocks, and a partly filled last block
def test_fork_shares_blocks_and_diverges(tiny_path, prompt_len):
    m = ember.Model(tiny_path, n_ctx=128, n_seq_max=3, kv_block_size=16, verbose=False)
    ids = m.tokenize(SAMPLE_TEXT)[:prompt_len + 8]
    prompt, tail_a, tail_b = ids[:prompt_len], ids[prompt_len:prompt_len + 4], ids[prompt_len + 4:prompt_len + 8]
    a = m.new_sequence()
    prefill(m, a, prompt)
    used = blocks_used(m)
    b = m.fork_sequence(a)
    assert blocks_used(m) == used, "a fork takes no blocks"
    assert m.sequence_length(b) == prompt_len
    blocks = m._engine.seq_blocks(a)
    assert m._engine.seq_blocks(b) == blocks
    assert all(m._engine.block_refcount(x) == 2 for x in blocks)

    la = prefill(m, a, tail_a, prompt_len)
    lb = prefill(m, b, tail_b, prompt_len)
    # the shared full blocks stay shared; a partly filled last block was copied before the write
    full = prompt_len // 16
    assert m._engine.seq_blocks(a)[:full] == m._engine.seq_blocks(b)[:full] == blocks[:full]
    if prompt_len % 16:
        assert m._engine.seq_blocks(a)[full] != m._engine.seq_blocks(b)[full]

    # each branch equals the same tokens decoded from scratch
    for tail, got in ((tail_a, la), (tail_b, lb)):
        s = m.new_sequence()
        want = prefill(m, s, prompt + tail)
        m.free_sequence(s)
        np.testing.assert_array_equal(got, want)

    m.free_sequence(a)
    assert all(m._engine.block_refcount(x) == 1 for x in m._engine.seq_blocks(b))
    assert m.sequence_length(b) == prompt_len + 4
    m.free_sequence(b)
    assert blocks_used(m) == 0
    assert m.kv_usage() == {"blocks_used": 0, "blocks_free": m.info["kv_blocks"], "sequences": 0}


def test_freeing_returns_every_block(tiny_path):
    m = ember.Model(tiny_path, n_ctx=64, n_seq_max=4, kv_block_size=8, verbose=False)
    ids = m.tokenize(SAMPLE_TEXT)[:40]
    seqs = [m.new_sequence() for _ in range(2)]
    for i, s in enumerate(seqs):
        prefill(m, s, ids[:10 + 13 * i])
    forks = [m.fork_sequence(s) for s in seqs]
    for f in forks:
        prefill(m, f, ids[:3], m.sequence_length(f))
    assert blocks_used(m) > 0
    for s in seqs + forks:
        m.free_sequence(s)
    assert blocks_used(m) == 0 and m.kv_usage()["sequences"] == 0
    with pytest.raises(ValueError, match="no sequence"):
        m.free_sequence(seqs[0])


def test_truncate_and_redecode(tiny_path):
    m = ember.Model(tiny_path, n_ctx=64, verbose=False)
    ids = m.tokenize(SAMPLE_TEXT)[:30]
    s = m.new_sequence()
    want = prefill(m, s, ids)
    m.truncate_sequence(s, 17)
    assert m.sequence_length(s) == 17
    np.testing.assert_array_equal(prefill(m, s, ids[17:], 17), want)
    with pytest.raises(ValueError):
        m.truncate_sequence(s, 31)
    m.free_sequence(s)


def test_micro_batches_equal_one_batch(tiny_path):
    """A batch longer than n_batch runs in pieces; the logits are the same bits."""
    big = ember.Model(tiny_path, n_ctx=128, n_batch=512, verbose=False)
    small = ember.Model(tiny_path, n_ctx=128, n_batch=7, verbose=False)
    ids = big.tokenize(SAMPLE_TEXT)[:50]
    np.testing.assert_array_equal(big.logits(ids), small.logits(ids))


def test_capacity_limits(tiny_path):
    m = ember.Model(tiny_path, n_ctx=32, n_seq_max=2, kv_block_size=16, verbose=False)  # 4 blocks
    ids = m.tokenize(SAMPLE_TEXT)[:40]
    a, b = m.new_sequence(), m.new_sequence()
    with pytest.raises(CapacityError, match="sequence slots"):
        m.new_sequence()
    prefill(m, a, ids[:32])
    with pytest.raises(ValueError, match="context size"):
        prefill(m, a, ids[:1], 32)                   # position 32 is past n_ctx
    m.free_sequence(a)
    m.free_sequence(b)

    # a pool smaller than n_ctx x n_seq_max: sequences compete for blocks
    m = ember.Model(tiny_path, n_ctx=64, n_seq_max=3, kv_block_size=16, kv_blocks=3, verbose=False)
    a = m.new_sequence()
    prefill(m, a, ids[:20])                          # 2 blocks, the second partly filled
    f = m.fork_sequence(a)                           # shares both
    prefill(m, f, ids[20:22], 20)                    # copies the shared partial block: the pool is full
    assert m.kv_usage()["blocks_free"] == 0
    with pytest.raises(CapacityError, match="KV cache full"):
        prefill(m, a, ids[20:33], 20)                # would need a fourth block
    assert m.sequence_length(a) == 20, "a refused batch changes nothing"
    assert m.kv_usage()["blocks_free"] == 0
    prefill(m, a, ids[20:32], 20)                    # fits in its own partial block
    with pytest.raises(CapacityError, match="KV cache full"):
        m.generate("The quick brown fox", max_tokens=4)
    m.free_sequence(f)
    assert m.kv_usage()["blocks_free"] == 1
    m.free_sequence(a)
    assert blocks_used(m) == 0


def test_bad_batches_are_refused(tiny_path):
    m = ember.Model(tiny_path, n_ctx=32, n_seq_max=2, verbose=False)
    s = m.new_sequence()
    with pytest.raises(ValueError, match="continues at position 0, got 1"):
        m.decode([1], [1], [s], [True])
    with pytest.raises(ValueError, match="no sequence with id 1"):
        m.decode([1], [0], [1], [True])
    with pytest.raises(ValueError, match="out of range"):
        m.decode([m.n_vocab], [0], [s], [True])
    with pytest.raises(ValueError, match="out of range"):
        m.decode([-1], [0], [s], [True])
    with pytest.raises(ValueError, match="same length"):
        m.decode([1, 2], [0], [s], [True])
    with pytest.raises(ValueError, match="empty batch"):
        m.decode([], [], [], [])
    with pytest.raises(TypeError):
        m.decode(["a"], [0], [s], [True])
    assert m.sequence_length(s) == 0 and blocks_used(m) == 0
    # two tokens of one sequence must come in order
    with pytest.raises(ValueError, match="continues at position 1, got 0"):
        m.decode([1, 2], [0, 0], [s, s], [False, True])
    out = m.decode([1, 2, 3], [0, 1, 2], [s, s, s], [True, False, True])
    assert out.shape == (2, m.n_vocab)


def test_generation_holds_blocks_only_while_it_runs(tiny_path):
    m = ember.Model(tiny_path, n_ctx=64, n_seq_max=2, verbose=False)
    it = m.stream("The quick brown fox", max_tokens=40, temperature=0, ignore_eos=True)
    next(it)
    assert m.kv_usage()["sequences"] == 1 and blocks_used(m) > 0
    it.close()  # abandoned half-way: the sequence is freed at once
    assert m.kv_usage() == {"blocks_used": 0, "blocks_free": m.info["kv_blocks"], "sequences": 0}
    m.generate("The quick brown fox", max_tokens=5, temperature=0)
    assert blocks_used(m) == 0


def test_generation_continues_a_cached_prefix(tiny_path):
    """A generation that continues a sequence already holding the prompt's first tokens (what a
    conversation does turn after turn) samples exactly what a fresh one does, and leaves the
    sequence holding the prompt and the evaluated completion."""
    m = ember.Model(tiny_path, n_ctx=96, n_seq_max=2, verbose=False)
    prompt = m.tokenize(SAMPLE_TEXT)[:30]
    fresh = m.complete(prompt, max_tokens=12, temperature=0, ignore_eos=True).token_ids
    s = m.new_sequence()
    prefill(m, s, prompt[:17])
    args = (12, 0.0, 40, 0.95, 0.05, 1.0, 64, 0.0, 0.0, 0, [], True, True)
    gen = m._engine.generate(prompt, *args, seq=s, n_cached=17)
    while not gen.done:
        gen.next()
    assert gen.tokens == fresh
    assert gen.stats()["prompt_tokens"] == 13
    assert m.sequence_length(s) == len(prompt) + len(fresh) - 1
    gen.close()
    assert m.kv_usage()["sequences"] == 1, "the caller's sequence is left to the caller"
    with pytest.raises(ValueError, match="holds 41 tokens"):
        m._engine.generate(prompt, *args, seq=s, n_cached=17)
    m.free_sequence(s)


def test_sequences_from_cached_blocks(tiny_path):
    """What the prefix cache builds on: a sequence made of another's full blocks continues to the
    same bits; references held outside sequences keep blocks alive; a block computed twice can be
    shared so one copy goes back to the pool."""
    m = ember.Model(tiny_path, n_ctx=64, n_seq_max=3, kv_block_size=16, verbose=False)
    e = m._engine
    ids = m.tokenize(SAMPLE_TEXT)[:40]
    a = m.new_sequence()
    want = prefill(m, a, ids)
    full = e.seq_blocks(a)[:2]
    b = e.seq_new_from_blocks(full)
    assert m.sequence_length(b) == 32 and [e.block_refcount(x) for x in full] == [2, 2]
    np.testing.assert_array_equal(prefill(m, b, ids[32:], 32), want)
    assert e.seq_blocks(b)[:2] == full and blocks_used(m) == 4  # a's 3 + b's own third
    e.block_retain(full[0])      # an outside reference, as the cache holds
    m.free_sequence(a)
    m.free_sequence(b)
    assert blocks_used(m) == 1 and e.block_refcount(full[0]) == 1
    c = e.seq_new_from_blocks(full[:1])
    np.testing.assert_array_equal(prefill(m, c, ids[16:], 16), want)
    m.free_sequence(c)
    e.block_release(full[0])
    assert blocks_used(m) == 0
    for bad in (lambda: e.seq_new_from_blocks([full[0]]), lambda: e.block_retain(full[0]),
                lambda: e.block_release(full[0]), lambda: e.block_release(10 ** 6)):
        with pytest.raises(ValueError, match="not in use"):
            bad()
    assert m.kv_usage()["sequences"] == 0

    # two sequences that computed the same 32 tokens: b takes a's blocks, its own copies go back
    a, b = m.new_sequence(), m.new_sequence()
    prefill(m, a, ids[:33])
    prefill(m, b, ids[:35])
    assert blocks_used(m) == 6
    for i in range(2):
        e.seq_share_block(b, i, e.seq_blocks(a)[i])
    assert blocks_used(m) == 4 and e.seq_blocks(b)[:2] == e.seq_blocks(a)[:2]
    np.testing.assert_array_equal(prefill(m, b, ids[35:], 35), want)
    with pytest.raises(ValueError, match="not full"):
        e.seq_share_block(b, 2, e.seq_blocks(a)[2])
    m.free_sequence(a)
    m.free_sequence(b)
    assert blocks_used(m) == 0
