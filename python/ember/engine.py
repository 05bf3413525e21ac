r"""``ember.Engine``: continuous batching — many requests in flight, one forward pass per step.

>>> eng = ember.Engine(model, max_running=8, token_budget=512)
>>> rid = eng.submit(model.tokenize("The capital of France is"), max_tokens=16, temperature=0)
>>> while eng.has_work():
...     for ev in eng.step():
...         print(ev.id, repr(ev.text), ev.finished and ev.finish_reason)

Each ``step()`` runs one forward pass over a token of every request that is decoding and chunks
of the prompts of the others (at most ``token_budget`` tokens in all), samples, and returns one
``EngineEvent`` per sampled token plus one for each request that ended otherwise (cancelled,
error). Requests wait in a queue, first come first served, for a sequence slot
(``max_running``) and KV blocks; when blocks run out the most recently admitted request is
preempted and later recomputed, invisibly to its caller. Full KV blocks are cached by content,
so requests that share a prefix (a system prompt) compute it once. A request gives the same
tokens alone or in any company (same seed, same output).

Threads: ``step()`` belongs to one thread (it releases the GIL while it computes); ``submit``,
``cancel``, ``has_work`` and ``stats`` may be called from any thread at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

from . import _core
from .model import Model, Prompt, _check_float, _check_int, _check_max_tokens, _check_seed, _check_stop

__all__ = ["Engine", "EngineEvent"]

MAX_LOGPROBS = 20


@dataclass
class EngineEvent:
    id: int
    text: str                     # new text ('' while held back, e.g. a possible stop string)
    token_ids: List[int]          # new tokens (empty for a cancelled or failed request)
    # per new token {"token": id, "logprob": float, "top": [(id, logprob), ...]}; None unless the
    # request asked for logprobs (and for events without tokens)
    logprobs: Optional[List[Dict[str, Any]]]
    finished: bool
    finish_reason: Optional[str]  # "stop" | "length" | "error" | "cancelled" once finished
    error: Optional[str]          # why, for "error"
    n_prompt: int
    n_generated: int


class Engine:
    """A scheduler over its own context on ``model``'s weights (the model stays usable).

    max_running: requests computed at once (sequence slots). token_budget: tokens per step.
    n_ctx: tokens per request (None: the model's). kv_blocks: the KV pool in blocks of the
    model's kv_block_size (None: enough for max_running requests of n_ctx tokens; fewer makes
    requests compete, and preemption keeps them all going). prefix_cache: reuse cached blocks.
    """

    def __init__(self, model: Model, max_running: int = 8, token_budget: int = 512, *, n_ctx: Optional[int] = None,
                 kv_blocks: Optional[int] = None, prefix_cache: bool = True):
        if not isinstance(model, Model):
            raise TypeError(f"model must be an ember.Model, got {type(model).__name__}")
        self.model = model
        self._sched = _core.Scheduler(
            model._engine.handle(), n_ctx=0 if n_ctx is None else _check_int("n_ctx", n_ctx, 1),
            max_running=_check_int("max_running", max_running, 1), token_budget=_check_int("token_budget", token_budget, 1),
            kv_blocks=0 if kv_blocks is None else _check_int("kv_blocks", kv_blocks, 1), prefix_cache=bool(prefix_cache))

    @property
    def n_ctx(self) -> int:
        return self._sched.n_ctx

    @property
    def max_running(self) -> int:
        return self._sched.max_running

    def submit(self, prompt_ids: Prompt, max_tokens: Optional[int] = 16, temperature: float = 0.8, top_k: int = 40,
               top_p: float = 0.95, min_p: float = 0.05, seed: Optional[int] = None,
               stop: Union[None, str, Sequence[str]] = (), presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
               repeat_penalty: float = 1.0, ignore_eos: bool = False, logprobs: Optional[int] = None,
               repeat_last_n: int = 64) -> int:
        """Queue a request; returns its id. prompt_ids: token ids (text is tokenized as
        Model.complete does). max_tokens None: until EOS or n_ctx. seed None: a random one.
        logprobs k (0..20): each token's log-probability and its k most probable alternatives.
        ValueError for an empty prompt, ids out of range, a prompt longer than n_ctx, or bad
        sampling values (as Model.complete)."""
        ids = self.model._prompt_ids(prompt_ids)
        if logprobs is None:
            k = -1
        else:
            k = _check_int("logprobs", logprobs, 0)
            if k > MAX_LOGPROBS:
                raise ValueError(f"logprobs must be at most {MAX_LOGPROBS}, got {k}")
        return self._sched.submit(
            ids, _check_max_tokens(max_tokens), _check_float("temperature", temperature), _check_int("top_k", top_k),
            _check_float("top_p", top_p), _check_float("min_p", min_p), _check_float("repeat_penalty", repeat_penalty),
            _check_int("repeat_last_n", repeat_last_n), _check_float("presence_penalty", presence_penalty),
            _check_float("frequency_penalty", frequency_penalty), _check_seed(seed),
            [s.encode("utf-8") for s in _check_stop(stop)], bool(ignore_eos), k)

    def cancel(self, rid: int) -> None:
        """Drop a request (queued or running) and free its blocks; the next step() reports it
        finished with "cancelled". Unknown or finished ids are ignored."""
        self._sched.cancel(_check_int("rid", rid))

    def step(self) -> List[EngineEvent]:
        """One engine step (one forward pass, when there is anything to run)."""
        return [EngineEvent(*t) for t in self._sched.step()]

    def has_work(self) -> bool:
        """Requests queued or running, or events not yet returned by step()."""
        return self._sched.has_work()

    def stats(self) -> Dict[str, int]:
        """running, waiting, kv_blocks_used (cached blocks included), kv_blocks_total,
        prefix_cache_blocks, prefix_queries, prefix_hit_blocks, prefix_hit_tokens, preemptions,
        prompt_tokens_total, generated_tokens_total, computed_tokens_total (recomputation
        included), steps, last_step_tokens, last_step_requests."""
        return self._sched.stats()

    def run(self) -> List[EngineEvent]:
        """Step until no work is left; every event, in order."""
        events: List[EngineEvent] = []
        while self.has_work():
            events += self.step()
        return events

    def __repr__(self) -> str:
        return f"Engine({self.model!r}, max_running={self.max_running}, n_ctx={self.n_ctx})"
