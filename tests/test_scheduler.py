"""The continuous-batching scheduler (cpp/scheduler, ember.Engine) and Model.generate_batch: a
request gives the same tokens (and the same log-probability bits) alone or among 15 others, with
chunked prefill, prefix hits and preemption; generate_batch equals complete(); prefix sharing,
preemption, cancellation, admission, errors and stats; submit/cancel from other threads."""

import math
import threading

import numpy as np
import pytest

import ember
from ember import Engine

pytest.importorskip("transformers")
from tiny_models import SAMPLE_TEXT  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tiny_gguf):
    return ember.Model(tiny_gguf, n_ctx=256, verbose=False)


@pytest.fixture(scope="module")
def smol(smollm2_path):
    return ember.Model(smollm2_path, n_ctx=512, verbose=False)


@pytest.fixture(scope="module")
def corpus(tiny):
    return tiny.tokenize(SAMPLE_TEXT)


def results(events):
    """Per request id: text, token ids, logprobs (or None), finish reason, error, final counts."""
    out = {}
    for ev in events:
        r = out.setdefault(ev.id, {"text": "", "ids": [], "logprobs": [], "reason": None, "error": None, "n": None})
        assert r["reason"] is None, f"request {ev.id}: an event after its last one"
        r["text"] += ev.text
        r["ids"] += ev.token_ids
        if ev.logprobs is not None:
            assert len(ev.logprobs) == len(ev.token_ids)
            r["logprobs"] += ev.logprobs
        if ev.finished:
            r["reason"], r["error"], r["n"] = ev.finish_reason, ev.error, (ev.n_prompt, ev.n_generated)
    return out


def run_alone(model, prompt, **kw):
    eng = Engine(model, max_running=1, prefix_cache=False)
    rid = eng.submit(prompt, **kw)
    return results(eng.run())[rid]


def mixed_prompts(corpus, n):
    """n prompts of different lengths (3 .. ~120 tokens) from different offsets of the corpus."""
    return [corpus[(37 * i) % 200:(37 * i) % 200 + 3 + (29 * i) % 118] for i in range(n)]


SAMPLED = dict(temperature=0.9, top_k=0, top_p=1.0, min_p=0.0)


@pytest.mark.parametrize("sampling", [dict(temperature=0), SAMPLED], ids=["greedy", "seeded"])
def test_alone_equals_among_fifteen_others(tiny, corpus, sampling):
    """16 requests with different prompts and lengths through one engine with a 7-token budget (so
    prompts are prefilled in chunks while others decode): each gives the tokens, the text and the
    log-probability bits it gives alone."""
    prompts = mixed_prompts(corpus, 16)
    kw = dict(sampling, ignore_eos=True, logprobs=3)
    eng = Engine(tiny, max_running=16, token_budget=7)
    rids = [eng.submit(p, max_tokens=12 + i % 5, seed=1000 + i, **kw) for i, p in enumerate(prompts)]
    got = results(eng.run())
    st = eng.stats()
    assert st["steps"] > 40 and st["last_step_tokens"] <= 16
    for i, (rid, p) in enumerate(zip(rids, prompts)):
        want = run_alone(tiny, p, max_tokens=12 + i % 5, seed=1000 + i, **kw)
        assert got[rid]["ids"] == want["ids"], f"request {i}"
        assert got[rid]["text"] == want["text"]
        assert got[rid]["logprobs"] == want["logprobs"], f"request {i}: logprob bits differ"
        assert got[rid]["reason"] == "length" and got[rid]["n"] == (len(p), 12 + i % 5)


def test_invariance_with_prefix_hits_and_preemption(tiny, corpus):
    """The same, in a pool too small for everyone (preemption and recompute) and with prompts
    that share a prefix (cached blocks adopted): still the same bits as alone, uncached."""
    shared = corpus[:40]
    prompts = [shared + corpus[50 + 7 * i:50 + 7 * i + 2 + i] for i in range(8)] + mixed_prompts(corpus, 8)
    kw = dict(SAMPLED, ignore_eos=True, logprobs=2, max_tokens=30)
    eng = Engine(tiny, max_running=16, token_budget=24, kv_blocks=24)
    rids = [eng.submit(p, seed=7 + i, **kw) for i, p in enumerate(prompts)]
    got = results(eng.run())
    st = eng.stats()
    assert st["preemptions"] > 0 and st["prefix_hit_tokens"] > 0, st
    for i, (rid, p) in enumerate(zip(rids, prompts)):
        want = run_alone(tiny, p, seed=7 + i, **kw)
        assert got[rid]["ids"] == want["ids"], f"request {i}"
        assert got[rid]["logprobs"] == want["logprobs"], f"request {i}"
        assert got[rid]["text"] == want["text"]


@pytest.mark.slow
def test_generate_batch_equals_complete(smol):
    prompts = ["The capital of France is", "def fibonacci(n):", "Once upon a time, in a small village by the sea,",
               "1, 2, 3, 4,", smol.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}])]
    want = [smol.complete(p, max_tokens=40, temperature=0) for p in prompts]
    got = smol.generate_batch(prompts, max_tokens=40, temperature=0, token_budget=16)
    assert [c.token_ids for c in got] == [c.token_ids for c in want]
    assert [c.text for c in got] == [c.text for c in want]
    assert [c.finish_reason for c in got] == [c.finish_reason for c in want]
    assert "stop" in [c.finish_reason for c in got] and "length" in [c.finish_reason for c in got]
    assert [c.usage for c in got] == [c.usage for c in want]
    assert all(c.timings.prompt_seconds > 0 for c in got)
    # seeded sampling and stop strings agree too; one seed for all: equal prompts, equal outputs
    kw = dict(max_tokens=30, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, stop=[" the", "\n\n"])
    got = smol.generate_batch(prompts[:2] + prompts[:1], seed=123, **kw)
    for p, c in zip(prompts[:2] + prompts[:1], got):
        w = smol.complete(p, seed=123, **kw)
        assert (c.token_ids, c.text, c.finish_reason, c.seed) == (w.token_ids, w.text, w.finish_reason, 123)
    assert got[0].token_ids == got[2].token_ids
    got = smol.generate_batch(prompts[:2], seed=[5, 6], **kw)
    assert [c.seed for c in got] == [5, 6]
    assert got[1].token_ids == smol.complete(prompts[1], seed=6, **kw).token_ids
    assert smol.generate_batch([]) == []
    with pytest.raises(ValueError, match="2 seeds for 1 prompts"):
        smol.generate_batch(prompts[:1], seed=[1, 2])
    with pytest.raises(TypeError):
        smol.generate_batch("a single string")


def test_prefix_sharing(tiny, corpus):
    """A second request with the same 64-token system prompt adopts its cached blocks and gives
    what it gives without the cache; concurrent requests end up holding the shared blocks once."""
    system = corpus[:64]
    a, b = system + corpus[100:105], system + corpus[120:131]
    kw = dict(max_tokens=10, temperature=0, ignore_eos=True)
    eng = Engine(tiny, max_running=4)
    ra = eng.submit(a, **kw)
    first = results(eng.run())[ra]
    assert eng.stats()["prefix_hit_tokens"] == 0
    cached = eng.stats()["prefix_cache_blocks"]
    assert cached == (len(a) + 10 - 1) // 16  # every full block it computed (generated ones too)
    assert eng.stats()["kv_blocks_used"] == cached
    rb = eng.submit(b, **kw)
    second = results(eng.run())[rb]
    st = eng.stats()
    assert st["prefix_hit_tokens"] >= 48 and st["prefix_hit_blocks"] == 4 and st["prefix_queries"] == 2
    assert second["ids"] == run_alone(tiny, b, **kw)["ids"]
    assert first["ids"] == run_alone(tiny, a, **kw)["ids"]
    # four at once, nothing cached yet: the first computes the prefix while the others wait, and
    # they adopt its blocks as soon as the step has cached them (each block computed once)
    eng = Engine(tiny, max_running=4)
    prompts = [system + corpus[140 + 3 * i:145 + 3 * i] for i in range(4)]  # 69 tokens: 4 full blocks + 5
    rids = [eng.submit(p, **kw) for p in prompts]
    events = eng.step()  # prefills the first; the others are admitted at the end of the step
    st = eng.stats()
    assert st["last_step_requests"] == 1 and st["running"] == 4 and st["prefix_hit_tokens"] == 3 * 64, st
    assert st["kv_blocks_used"] == 4 + 1  # the others take their own blocks as they compute
    events += eng.step()  # the other three compute their last 5 prompt tokens, the first decodes
    st = eng.stats()
    assert st["computed_tokens_total"] == 69 + 1 + 3 * 5 and st["kv_blocks_used"] == 4 + 4 * 1, st
    got = results(events + eng.run())
    for rid, p in zip(rids, prompts):
        assert got[rid]["ids"] == run_alone(tiny, p, **kw)["ids"]
    # a prompt that is only cached blocks still computes its last token (it needs the logits)
    eng = Engine(tiny, max_running=2)
    r1 = eng.submit(system, **kw)
    eng.run()
    r2 = eng.submit(system, **kw)
    again = results(eng.run())[r2]
    assert eng.stats()["prefix_hit_tokens"] == 48
    assert again["ids"] == run_alone(tiny, system, **kw)["ids"] and r1 != r2


def test_preemption_keeps_every_request(tiny, corpus):
    """Eight requests in a pool of 12 blocks (each needs 4 by its end): all finish, preempted ones
    are recomputed, and every output equals the unconstrained run's."""
    prompts = mixed_prompts(corpus, 8)
    prompts = [p[:20] for p in prompts]
    kw = dict(max_tokens=40, ignore_eos=True, **SAMPLED)
    free = Engine(tiny, max_running=8)
    free_ids = [free.submit(p, seed=i, **kw) for i, p in enumerate(prompts)]
    want = results(free.run())
    assert free.stats()["preemptions"] == 0
    tight = Engine(tiny, max_running=8, token_budget=32, kv_blocks=12)
    rids = [tight.submit(p, seed=i, **kw) for i, p in enumerate(prompts)]
    running_max = 0
    events = []
    while tight.has_work():
        events += tight.step()
        st = tight.stats()
        running_max = max(running_max, st["running"])
        assert st["kv_blocks_used"] <= 12
    got = results(events)
    st = tight.stats()
    assert st["preemptions"] > 0 and running_max > 1
    assert st["generated_tokens_total"] == 8 * 40
    assert st["computed_tokens_total"] > sum(len(p) for p in prompts) + 8 * 39  # recomputation
    for i, rid in enumerate(rids):
        w = want[free_ids[i]]
        assert got[rid]["ids"] == w["ids"] and got[rid]["text"] == w["text"], f"request {i}"
        assert got[rid]["reason"] == "length"


def test_cancel_frees_blocks(tiny, corpus):
    eng = Engine(tiny, max_running=2, token_budget=16)
    kw = dict(max_tokens=50, temperature=0, ignore_eos=True)
    rids = [eng.submit(corpus[i * 30:i * 30 + 40], **kw) for i in range(3)]
    for _ in range(6):
        eng.step()
    st = eng.stats()
    assert st["running"] == 2 and st["waiting"] == 1 and st["kv_blocks_used"] > st["prefix_cache_blocks"]
    eng.cancel(rids[2])  # waiting
    eng.cancel(rids[0])  # running
    eng.cancel(rids[0])  # twice: nothing
    eng.cancel(12345)    # unknown: nothing
    st = eng.stats()
    assert st["running"] == 1 and st["waiting"] == 0
    events = eng.step()
    cancelled = [e for e in events if e.finish_reason == "cancelled"]
    assert sorted(e.id for e in cancelled) == sorted(rids[::2]) and all(not e.token_ids for e in cancelled)
    eng.cancel(rids[1])
    assert [e.finish_reason for e in eng.step()] == ["cancelled"]
    st = eng.stats()
    assert not eng.has_work() and st["running"] == 0
    assert st["kv_blocks_used"] == st["prefix_cache_blocks"] > 0  # only cached blocks remain
    assert eng.step() == []


def test_finished_leave_and_waiting_join(tiny, corpus):
    eng = Engine(tiny, max_running=2)
    lengths = [3, 8, 2, 5, 4]
    rids = [eng.submit(corpus[10 * i:10 * i + 12], max_tokens=n, temperature=0, ignore_eos=True)
            for i, n in enumerate(lengths)]
    finished_at = {}
    step = 0
    while eng.has_work():
        step += 1
        for ev in eng.step():
            if ev.finished:
                finished_at[ev.id] = step
        st = eng.stats()
        assert st["running"] <= 2
        if st["waiting"]:
            assert st["running"] == 2, "a finished request's slot goes to the queue in the same step"
    assert set(finished_at) == set(rids)
    # 0 and 1 start first; 2 joins when 0 ends (step 3) and runs 2 steps; 3 joins when 2 ends...
    assert finished_at[rids[0]] == 3 and finished_at[rids[2]] == 5
    assert finished_at[rids[1]] == 8 and finished_at[rids[3]] == 10 and finished_at[rids[4]] == 12
    st = eng.stats()
    assert st["prompt_tokens_total"] == 5 * 12 and st["generated_tokens_total"] == sum(lengths)


def test_errors(tiny, corpus):
    eng = Engine(tiny, max_running=2)
    for bad, match in [(dict(prompt_ids=[]), "empty"), (dict(prompt_ids=[tiny.n_vocab]), "out of range"),
                       (dict(prompt_ids=corpus[:257]), "context size"),
                       (dict(prompt_ids=[1, 2], temperature=-1), "temperature"),
                       (dict(prompt_ids=[1, 2], top_p=0), "top_p"), (dict(prompt_ids=[1, 2], logprobs=21), "logprobs"),
                       (dict(prompt_ids=[1, 2], stop=[""]), "stop"), (dict(prompt_ids=[1, 2], max_tokens=-1), "max_tokens"),
                       (dict(prompt_ids=[1, 2], seed=-1), "seed")]:
        with pytest.raises(ValueError, match=match):
            eng.submit(**bad)
    with pytest.raises(TypeError):
        eng.submit([1, 2], max_tokens="3")
    for bad in (dict(max_running=0), dict(token_budget=0), dict(kv_blocks=0), dict(n_ctx=0)):
        with pytest.raises(ValueError):
            Engine(tiny, **bad)
    with pytest.raises(TypeError):
        Engine("not a model")
    assert not eng.has_work()

    # 3 blocks of 16 tokens: a 60-token prompt can never fit, a 20-token one outgrows the pool
    eng = Engine(tiny, max_running=2, kv_blocks=3)
    big = eng.submit(corpus[:60], max_tokens=4, temperature=0)
    grows = eng.submit(corpus[:20], max_tokens=100, temperature=0, ignore_eos=True)
    got = results(eng.run())
    assert got[big]["reason"] == "error" and "KV blocks" in got[big]["error"] and got[big]["ids"] == []
    assert got[grows]["reason"] == "error" and "outgrew" in got[grows]["error"]
    assert len(got[grows]["ids"]) == 3 * 16 - 20 + 1  # it ran as far as the pool goes
    assert got[grows]["ids"] == run_alone(tiny, corpus[:20], max_tokens=29, temperature=0, ignore_eos=True)["ids"]
    st = eng.stats()
    assert st["running"] == st["waiting"] == 0
    # max_tokens=0 and the context limit end as Model.complete ends
    eng = Engine(tiny, n_ctx=40)
    r0 = eng.submit(corpus[:10], max_tokens=0)
    r1 = eng.submit(corpus[:30], max_tokens=None, temperature=0, ignore_eos=True)
    r2 = eng.submit(corpus[:40], max_tokens=5, temperature=0, ignore_eos=True)
    got = results(eng.run())
    assert got[r0]["reason"] == "length" and got[r0]["ids"] == [] and got[r0]["n"] == (10, 0)
    assert got[r1]["reason"] == "length" and 30 + len(got[r1]["ids"]) == 40 + 1
    assert got[r2]["reason"] == "length" and len(got[r2]["ids"]) == 1
    with pytest.raises(ValueError, match="context size"):
        eng.submit(corpus[:41])


def test_logprobs_are_log_softmax_of_the_logits(tiny, corpus):
    prompt = corpus[:25]
    eng = Engine(tiny)
    rid = eng.submit(prompt, max_tokens=6, temperature=0, ignore_eos=True, logprobs=5)
    r = results(eng.run())[rid]
    rows = tiny.logits(prompt + r["ids"][:-1])[len(prompt) - 1:].astype(np.float64)
    for lp, row, tok in zip(r["logprobs"], rows, r["ids"]):
        logsm = row - (row.max() + np.log(np.exp(row - row.max()).sum()))
        assert lp["token"] == tok == int(row.argmax())
        assert math.isclose(lp["logprob"], logsm[tok], abs_tol=1e-5)
        assert [t for t, _ in lp["top"]] == list(np.argsort(-row, kind="stable")[:5])
        assert np.allclose([v for _, v in lp["top"]], np.sort(logsm)[::-1][:5], atol=1e-5)
    rid = eng.submit(prompt, max_tokens=2, logprobs=0)
    r = results(eng.run())[rid]
    assert all(lp["top"] == [] for lp in r["logprobs"]) and len(r["logprobs"]) == 2
    rid = eng.submit(prompt, max_tokens=2)
    assert results(eng.run())[rid]["logprobs"] == []


def test_submit_and_cancel_from_other_threads(tiny, corpus):
    """The engine thread steps while two others submit and cancel: every request ends exactly once,
    the uncancelled ones with their solo output."""
    eng = Engine(tiny, max_running=4, token_budget=16)
    kw = dict(max_tokens=8, temperature=0, ignore_eos=True)
    events, stop = [], threading.Event()
    submitted = {}
    errors = []

    def engine():
        try:
            while not stop.is_set() or eng.has_work():
                events.extend(eng.step())
        except Exception as e:  # pragma: no cover
            errors.append(e)

    def client(k):
        try:
            for i in range(10):
                p = corpus[k * 50 + i:k * 50 + i + 10 + i]
                rid = eng.submit(p, **kw)
                submitted[rid] = p
                eng.stats()
                if i % 3 == 2:
                    eng.cancel(rid)
        except Exception as e:  # pragma: no cover
            errors.append(e)

    t = threading.Thread(target=engine)
    t.start()
    clients = [threading.Thread(target=client, args=(k,)) for k in range(2)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    stop.set()
    t.join(timeout=60)
    assert not errors and not t.is_alive()
    got = results(events)
    assert set(got) == set(submitted)
    for rid, r in got.items():
        assert r["reason"] in ("length", "cancelled")
        if r["reason"] == "length":
            assert r["ids"] == run_alone(tiny, submitted[rid], **kw)["ids"]
    assert sum(r["reason"] == "cancelled" for r in got.values()) >= 1
    st = eng.stats()
    assert st["running"] == st["waiting"] == 0 and st["kv_blocks_used"] == st["prefix_cache_blocks"]


@pytest.mark.slow
def test_alone_equals_batched_on_smollm2(smol):
    """The real model (Q4_1 weights: the integer matmul tiles) through the same check: eight
    requests, chunked prefill, seeded sampling: the same tokens and logprob bits as alone."""
    texts = ["The capital of France is", "def fibonacci(n):", "Once upon a time", "1, 2, 3, 4,",
             "The quick brown fox jumps over the lazy dog because", "import numpy as np\n", "Dear Sir,", "Q: Why?"]
    kw = dict(max_tokens=12, temperature=0.8, logprobs=2, ignore_eos=True)
    eng = Engine(smol, max_running=8, token_budget=9)
    rids = [eng.submit(smol.tokenize(t), seed=i, **kw) for i, t in enumerate(texts)]
    got = results(eng.run())
    for i, (rid, t) in enumerate(zip(rids, texts)):
        want = run_alone(smol, smol.tokenize(t), seed=i, **kw)
        assert got[rid]["ids"] == want["ids"] and got[rid]["logprobs"] == want["logprobs"], f"request {i}"


def test_alone_equals_joining_decoding_requests_on_smollm2(smol):
    """A prompt that joins a batch of decoding requests: its prefill and their decodes share steps
    of 20 to 40 tokens, whose SwiGLU work the threads split at other places than alone (the split
    once fell inside the kernels' 8-value steps, whose tail takes another exponential: other bits,
    then other tokens)."""
    kw = dict(max_tokens=16, temperature=0, logprobs=1)
    prompts = [smol.tokenize(f"Question {i}: what is {i} plus {i}? Answer:") for i in range(24)]
    alone = {}
    for k in (4, 8, 14, 16, 20):
        eng = Engine(smol, max_running=32, prefix_cache=False)
        rids = {eng.submit(p, **kw): i for i, p in enumerate(prompts[:k])}
        events = list(eng.step())
        rids[eng.submit(prompts[23], **kw)] = 23
        got = results(events + eng.run())
        for rid, i in rids.items():
            if i not in alone:
                alone[i] = run_alone(smol, prompts[i], **kw)
            assert got[rid]["ids"] == alone[i]["ids"] and got[rid]["logprobs"] == alone[i]["logprobs"], f"request {i} of {k + 1}"


@pytest.mark.slow
def test_cancel_during_the_forward_pass(smol):
    """Cancels that arrive while step() computes (one request in the batch, one running without a
    share of the budget) are completed when the pass returns: both end "cancelled", no blocks leak."""
    ids = smol.tokenize("The history of the city begins in the early middle ages. " * 30)[:400]
    eng = Engine(smol, max_running=2, token_budget=400, prefix_cache=False)
    a = eng.submit(ids, max_tokens=4)
    b = eng.submit(ids[::-1], max_tokens=4)
    out = []
    t = threading.Thread(target=lambda: out.extend(eng.step()))
    t.start()
    while eng.stats()["running"] < 2:  # admitted: the pass over a's 400 tokens is under way
        pass
    eng.cancel(a)
    eng.cancel(b)
    t.join()
    out += eng.run()
    assert sorted((e.id, e.finish_reason) for e in out) == [(a, "cancelled"), (b, "cancelled")]
    assert eng.stats()["kv_blocks_used"] == 0 and eng.stats()["steps"] == 1


def test_cached_blocks_are_evicted_least_recently_used(tiny, corpus):
    """Cached blocks stay until the pool needs them; then the least recently used go first."""
    eng = Engine(tiny, max_running=1, kv_blocks=8)
    kw = dict(max_tokens=1, temperature=0)
    a, b, c = corpus[0:33], corpus[40:73], corpus[80:113]  # two full blocks each
    for p in (a, b, c):
        eng.submit(p, **kw)
        eng.run()
    st = eng.stats()
    assert st["prefix_cache_blocks"] == 6 and st["kv_blocks_used"] == 6 and st["prefix_hit_tokens"] == 0
    d = eng.submit(corpus[120:169], **kw)  # 49 tokens: 4 blocks, 2 free + a's 2 evicted
    assert results(eng.run())[d]["reason"] == "length"
    assert eng.stats()["prefix_cache_blocks"] == 2 + 2 + 3
    eng.submit(b, **kw)
    eng.run()
    assert eng.stats()["prefix_hit_tokens"] == 32      # b was still cached
    eng.submit(a, **kw)
    eng.run()
    assert eng.stats()["prefix_hit_tokens"] == 32      # a was not
    assert eng.stats()["kv_blocks_used"] <= 8
