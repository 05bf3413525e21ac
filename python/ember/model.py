r"""``ember.Model``: load a GGUF model and generate text, stream it, score it, chat with it.

>>> model = ember.Model("SmolLM2-135M-Instruct.Q4_1.gguf")
>>> model.generate("The capital of France is", max_tokens=8, temperature=0)
' Paris.\n\nThe United States has'

Everything heavy runs in the C++ core with the GIL released; one model may be used from several
threads (calls into it are serialized; streams interleave token by token). Sampling defaults
are llama.cpp's (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05); ``temperature=0`` is greedy.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core, chat as _chat
from .errors import CapacityError

__all__ = ["Model", "Completion", "Usage", "Timings"]

Prompt = Union[str, Sequence[int]]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Timings:
    prompt_seconds: float     # evaluating the prompt
    generate_seconds: float   # sampling and evaluating the completion

    def rates(self, usage: Usage) -> Dict[str, float]:
        """Tokens per second of the prompt and of the completion."""
        return {"prompt_tokens_per_second": usage.prompt_tokens / self.prompt_seconds if self.prompt_seconds else 0.0,
                "tokens_per_second": usage.completion_tokens / self.generate_seconds if self.generate_seconds else 0.0}


@dataclass(frozen=True)
class Completion:
    text: str
    token_ids: List[int]       # sampled ids (an end-of-generation token included when it ended the text)
    finish_reason: str         # "stop" (EOS or a stop string) or "length" (max_tokens or n_ctx)
    usage: Usage
    timings: Timings
    prompt_token_ids: List[int] = field(repr=False, default_factory=list)
    seed: int = 0


def _check_int(name: str, value: Any, minimum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def _check_max_tokens(max_tokens: Optional[int]) -> int:
    return -1 if max_tokens is None else _check_int("max_tokens", max_tokens, 0)


def _check_seed(seed: Optional[int]) -> int:
    """A seed for the core (None: a fresh random one)."""
    if seed is None:
        return secrets.randbits(63)
    seed = _check_int("seed", seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


def _check_stop(stop: Union[None, str, Sequence[str]]) -> List[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    stops = list(stop)
    for s in stops:
        if not isinstance(s, str):
            raise TypeError(f"stop must be a str or a list of str, got an element of type {type(s).__name__}")
    return stops


class Model:
    """A GGUF model ready to run.

    n_ctx: tokens per sequence (prompt + completion); a longer prompt is an error, generation
    stops with ``finish_reason="length"`` at the limit. n_threads: None for one per CPU.
    kv_type: "f16" (default) or "f32" KV cache. n_seq_max: sequences that may be alive at once
    (streams, generations); the KV cache holds n_ctx x n_seq_max tokens unless kv_blocks (of
    kv_block_size tokens) says otherwise. n_batch: prompt tokens per forward step. verbose: print
    a load report to stderr.
    """

    def __init__(self, path: "str | os.PathLike[str]", n_ctx: int = 4096, n_threads: Optional[int] = None,
                 kv_type: str = "f16", *, n_seq_max: int = 1, n_batch: int = 512, kv_block_size: int = 16,
                 kv_blocks: Optional[int] = None, verbose: bool = True):
        self.path = os.fspath(path)
        n_ctx = _check_int("n_ctx", n_ctx)
        if n_ctx <= 0:
            raise ValueError(f"n_ctx must be positive, got {n_ctx}")
        threads = 0 if n_threads is None else _check_int("n_threads", n_threads, 1)
        if not isinstance(kv_type, str):
            raise TypeError(f"kv_type must be a str, got {type(kv_type).__name__}")
        self._engine = _core.Engine(os.fsencode(self.path), n_ctx=n_ctx, n_threads=threads, kv_type=kv_type.lower(),
                                    n_seq_max=_check_int("n_seq_max", n_seq_max, 1), n_batch=_check_int("n_batch", n_batch, 1),
                                    kv_block_size=_check_int("kv_block_size", kv_block_size, 1),
                                    n_kv_blocks=0 if kv_blocks is None else _check_int("kv_blocks", kv_blocks, 1))
        self.info: Dict[str, Any] = self._engine.info()
        self._metadata: Optional[Dict[str, Any]] = None
        if verbose:
            print(self.load_report(), file=sys.stderr)

    # -- facts ------------------------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        return self.info["n_ctx"]

    @property
    def n_vocab(self) -> int:
        return self.info["n_vocab"]

    @property
    def metadata(self) -> Dict[str, Any]:
        """Every GGUF key/value of the file."""
        if self._metadata is None:
            self._metadata = _core.GGUFReader(os.fsencode(self.path)).metadata()
        return self._metadata

    @property
    def chat_template(self) -> Optional[str]:
        return self._engine.chat_template or None

    def load_report(self) -> str:
        i = self.info
        mib = 1 << 20
        return (f"ember: loaded {i['name']} ({i['architecture']}, {i['n_params'] / 1e6:.1f} M parameters, "
                f"{i['weight_bytes'] / mib:.1f} MiB of weights) in {i['load_seconds'] * 1e3:.0f} ms; {i['isa']}, "
                f"{i['n_threads']} threads\n"
                f"ember: KV cache {i['kv_bytes'] / mib:.1f} MiB ({i['kv_type']}): {i['kv_blocks']} blocks of "
                f"{i['kv_block_size']} tokens for n_ctx {i['n_ctx']} x {i['n_seq_max']} sequence"
                f"{'s' if i['n_seq_max'] != 1 else ''}")

    def kv_usage(self) -> Dict[str, int]:
        """KV blocks in use and free, and the live sequences."""
        return self._engine.kv_usage()

    # -- text <-> tokens ---------------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = True) -> List[int]:
        """Token ids for text; add_special adds BOS as the model file says; parse_special
        recognizes control tokens such as "<|im_start|>" written in the text."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._engine.tokenize(text.encode("utf-8", "surrogatepass"), bool(add_special), bool(parse_special))

    def detokenize(self, ids: Sequence[int], skip_special: bool = False) -> str:
        return self._engine.detokenize(self._ids(ids, "ids"), bool(skip_special))

    def _ids(self, ids: Any, what: str) -> List[int]:
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise TypeError(f"{what} must be a sequence of token ids")
        out = []
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
                raise TypeError(f"{what} must hold ints, got {type(i).__name__}")
            out.append(int(i))
        return out

    def _prompt_ids(self, prompt: Prompt) -> List[int]:
        if isinstance(prompt, str):
            return self.tokenize(prompt)
        ids = self._ids(prompt, "prompt")
        if not ids:
            raise ValueError("the prompt is empty (no tokens)")
        return ids

    # -- the low-level batch API ---------------------------------------------------------------
    # Sequences live in the paged KV cache; one decode() call runs tokens of any number of them.
    def new_sequence(self) -> int:
        """An empty sequence in the KV cache (CapacityError when n_seq_max are alive)."""
        return self._engine.seq_new()

    def fork_sequence(self, seq: int) -> int:
        """A new sequence holding seq's tokens; the two share KV blocks until they diverge."""
        return self._engine.seq_fork(_check_int("seq", seq))

    def free_sequence(self, seq: int) -> None:
        self._engine.seq_free(_check_int("seq", seq))

    def sequence_length(self, seq: int) -> int:
        return self._engine.seq_len(_check_int("seq", seq))

    def truncate_sequence(self, seq: int, n_tokens: int) -> None:
        """Keep the first n_tokens of seq (to re-decode from there)."""
        self._engine.seq_truncate(_check_int("seq", seq), _check_int("n_tokens", n_tokens))

    def decode(self, tokens: Sequence[int], positions: Sequence[int], seq_ids: Sequence[int],
               logits: Sequence[bool]) -> np.ndarray:
        """Run one batch: token i at positions[i] of sequence seq_ids[i] (each sequence continuing
        where it ends). Returns the next-token logits of the tokens with logits[i] true, in order."""
        return self._engine.decode(self._ids(tokens, "tokens"), self._ids(positions, "positions"),
                                   self._ids(seq_ids, "seq_ids"), [bool(x) for x in logits])

    # -- scoring -------------------------------------------------------------------------------
    def logits(self, token_ids: Sequence[int]) -> np.ndarray:
        """Next-token logits after every prefix: float32 array (len(token_ids), n_vocab)."""
        return self._engine.logits(self._ids(token_ids, "token_ids"))

    def perplexity(self, text: str, n_ctx: int = 512, *, n_chunks: Optional[int] = None) -> Dict[str, Any]:
        """llama.cpp's perplexity: chunks of n_ctx tokens, the second half of each scored. As
        llama.cpp does, the text is tokenized with BOS (when the model adds one) and each chunk's
        first token is replaced by BOS, so the numbers compare with its tool's."""
        ids = self.tokenize(text, add_special=True, parse_special=False)
        add_bos = self._engine.bos_id >= 0 and bool(self._engine.add_bos)
        return self._engine.perplexity(ids, _check_int("n_ctx", n_ctx, 2), add_bos,
                                       -1 if n_chunks is None else _check_int("n_chunks", n_chunks, 1))

    # -- generation -----------------------------------------------------------------------------
    def _start(self, prompt_ids: List[int], max_tokens: Optional[int], temperature: float, top_k: int, top_p: float,
               min_p: float, repeat_penalty: float, repeat_last_n: int, presence_penalty: float,
               frequency_penalty: float, seed: Optional[int], stop: Union[None, str, Sequence[str]],
               ignore_eos: bool):
        max_tokens = _check_max_tokens(max_tokens)
        seed = _check_seed(seed)
        stops = _check_stop(stop)
        gen = self._engine.generate(
            prompt_ids, max_tokens, _check_float("temperature", temperature), _check_int("top_k", top_k),
            _check_float("top_p", top_p), _check_float("min_p", min_p), _check_float("repeat_penalty", repeat_penalty),
            _check_int("repeat_last_n", repeat_last_n), _check_float("presence_penalty", presence_penalty),
            _check_float("frequency_penalty", frequency_penalty), seed, [s.encode("utf-8") for s in stops],
            bool(ignore_eos), True)
        return gen, seed

    def complete(self, prompt: Prompt, max_tokens: Optional[int] = 256, temperature: float = 0.8, top_k: int = 40,
                 top_p: float = 0.95, min_p: float = 0.05, repeat_penalty: float = 1.0, repeat_last_n: int = 64,
                 presence_penalty: float = 0.0, frequency_penalty: float = 0.0, seed: Optional[int] = None,
                 stop: Union[None, str, Sequence[str]] = None, ignore_eos: bool = False) -> Completion:
        """Generate a completion and return it with its tokens, finish reason, usage and timings.

        prompt: text (tokenized with the model's BOS and control tokens recognized) or token ids.
        max_tokens: None for no limit but the context. stop: strings that end the text (never
        included). seed: None draws a fresh one (returned in the Completion)."""
        ids = self._prompt_ids(prompt)
        gen, seed = self._start(ids, max_tokens, temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n,
                                presence_penalty, frequency_penalty, seed, stop, ignore_eos)
        try:
            pieces = []
            while not gen.done:
                pieces.append(gen.next())
        finally:
            gen.close()
        return self._completion(gen, "".join(pieces), ids, seed)

    def generate(self, prompt: Prompt, max_tokens: Optional[int] = 256, **sampling: Any) -> str:
        """The completion's text (see complete() for the arguments)."""
        return self.complete(prompt, max_tokens, **sampling).text

    def stream(self, prompt: Prompt, max_tokens: Optional[int] = 256, **sampling: Any) -> Iterator[str]:
        """Yield the completion's text piece by piece as it is generated (whole UTF-8 characters;
        text that may begin a stop string is held back until it cannot). Closing the iterator
        early frees the sequence."""
        ids = self._prompt_ids(prompt)
        gen, _ = self._start(ids, max_tokens, **self._sampling(sampling))
        return self._pieces(gen)

    def generate_batch(self, prompts: Sequence[Prompt], max_tokens: Optional[int] = 256, *, max_running: int = 8,
                       token_budget: Optional[int] = None, **sampling: Any) -> List[Completion]:
        """Complete every prompt at once through an ember.Engine (continuous batching); the
        Completions come back in the prompts' order. Sampling arguments as complete(). seed: one
        int for every request (identical prompts then give identical completions), a list of one
        per prompt, or None (a fresh seed each). Each completion equals what complete() gives
        with the same seed. Timings count from submission (queueing included)."""
        from .engine import Engine  # engine imports this module

        if isinstance(prompts, (str, bytes)) or not hasattr(prompts, "__iter__"):
            raise TypeError("prompts must be a sequence of prompts (texts or lists of token ids)")
        ids = [self._prompt_ids(p) for p in prompts]
        kw = self._sampling(sampling)
        seed = kw.pop("seed")
        if isinstance(seed, (list, tuple)):
            if len(seed) != len(ids):
                raise ValueError(f"seed: {len(seed)} seeds for {len(ids)} prompts")
            seeds = [_check_seed(s) for s in seed]
        elif seed is None:
            seeds = [_check_seed(None) for _ in ids]
        else:
            seeds = [_check_seed(seed)] * len(ids)
        if not ids:
            return []
        eng = Engine(self, max_running=min(_check_int("max_running", max_running, 1), len(ids)),
                     token_budget=self.info["n_batch"] if token_budget is None else token_budget)
        t0 = time.perf_counter()
        rids = [eng.submit(p, max_tokens, seed=s, **kw) for p, s in zip(ids, seeds)]
        index = {rid: i for i, rid in enumerate(rids)}
        texts: List[List[str]] = [[] for _ in ids]
        tokens: List[List[int]] = [[] for _ in ids]
        first = [0.0] * len(ids)
        done: List[Optional[Tuple[str, int, int, float]]] = [None] * len(ids)
        while eng.has_work():
            for ev in eng.step():
                i = index[ev.id]
                if ev.token_ids and not tokens[i]:
                    first[i] = time.perf_counter()
                texts[i].append(ev.text)
                tokens[i] += ev.token_ids
                if ev.finished:
                    if ev.finish_reason == "error":
                        raise CapacityError(f"prompt {i}: {ev.error}")
                    done[i] = (ev.finish_reason, ev.n_prompt, ev.n_generated, time.perf_counter())
        out = []
        for i, d in enumerate(done):
            assert d is not None, "the engine ran out of work before every request finished"
            reason, n_prompt, n_gen, t_end = d
            t_first = first[i] or t_end
            out.append(Completion(text="".join(texts[i]), token_ids=tokens[i], finish_reason=reason,
                                  usage=Usage(n_prompt, n_gen), timings=Timings(t_first - t0, t_end - t_first),
                                  prompt_token_ids=ids[i], seed=seeds[i]))
        return out

    @staticmethod
    def _pieces(gen) -> Iterator[str]:
        try:
            while not gen.done:
                piece = gen.next()
                if piece:
                    yield piece
        finally:
            gen.close()

    @staticmethod
    def _sampling(kw: Dict[str, Any]) -> Dict[str, Any]:
        defaults = dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, repeat_last_n=64,
                        presence_penalty=0.0, frequency_penalty=0.0, seed=None, stop=None, ignore_eos=False)
        unknown = set(kw) - set(defaults)
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        return {**defaults, **kw}

    @staticmethod
    def _completion(gen, text: str, prompt_ids: List[int], seed: int) -> Completion:
        st = gen.stats()
        return Completion(text=text, token_ids=list(gen.tokens), finish_reason=gen.finish_reason,
                          usage=Usage(st["prompt_tokens"] or len(prompt_ids), st["completion_tokens"]),
                          timings=Timings(st["prompt_seconds"], st["generate_seconds"]), prompt_token_ids=prompt_ids,
                          seed=seed)

    # -- chat ------------------------------------------------------------------------------------
    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True,
                            **extra: Any) -> str:
        """The prompt text for a conversation, rendered with the model's Jinja chat template."""
        bos = self._engine.token_text(self._engine.bos_id) if self._engine.bos_id >= 0 else ""
        eos = self._engine.token_text(self._engine.eos_id) if self._engine.eos_id >= 0 else ""
        return _chat.render(self.chat_template or "", messages, add_generation_prompt=add_generation_prompt,
                            bos_token=bos, eos_token=eos, **extra)

    def chat(self, messages: Sequence[Mapping[str, Any]], max_tokens: Optional[int] = 256, *, stream: bool = False,
             **sampling: Any) -> Union[str, Iterator[str]]:
        """The assistant's reply to a conversation ([{"role": ..., "content": ...}, ...]).
        stream=True yields it piece by piece."""
        text = self.apply_chat_template(messages)
        # a template that writes BOS itself must not get a second one from the tokenizer
        bos = self._engine.token_text(self._engine.bos_id) if self._engine.bos_id >= 0 else None
        ids = self.tokenize(text, add_special=not (bos and text.startswith(bos)))
        if stream:
            gen, _ = self._start(ids, max_tokens, **self._sampling(sampling))
            return self._pieces(gen)
        return self.complete(ids, max_tokens, **sampling).text

    def __repr__(self) -> str:
        return f"Model({self.path!r}, n_ctx={self.n_ctx})"
