"""The OpenAI wire format: request validation and response shapes for the server.

Nothing here touches the engine or HTTP. ``parse_completion`` / ``parse_chat`` turn a decoded
JSON body into a ``GenerationRequest`` (or raise ``APIError``, a 400 naming the field), and the
builders below turn results into OpenAI's JSON objects, so ``server.py`` only moves data.

Fields OpenAI defines but ember cannot honour (``echo``, ``suffix``, ``best_of`` > 1, a
``logit_bias``, tools, JSON response formats) are refused with a 400 rather than silently
ignored; fields nobody defines are ignored, as the official client may send new ones. A few
llama.cpp-server extensions are accepted: ``top_k``, ``min_p``, ``repeat_penalty``,
``ignore_eos``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = ["APIError", "GenerationRequest", "parse_completion", "parse_chat", "completion_object",
           "completion_chunk", "chat_object", "chat_chunk", "usage_object", "completion_logprobs",
           "chat_logprobs", "new_id"]

MAX_N = 128           # choices per request (OpenAI's limit)
MAX_STOP = 16         # stop strings per request (OpenAI allows 4; more costs nothing here)
MAX_LOGPROBS = 20     # alternatives per token


class APIError(Exception):
    """An error to send as OpenAI's ``{"error": {...}}`` body with an HTTP status."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: Optional[str] = None, code: Optional[str] = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> Dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _bad(param: str, message: str, code: Optional[str] = None) -> APIError:
    return APIError(400, message, param=param, code=code)


# -- typed getters: None (JSON null) or absent means "the default" ------------------------------
def _get(body: Mapping[str, Any], name: str, kind: str, default: Any = None, lo: Optional[float] = None,
         hi: Optional[float] = None) -> Any:
    v = body.get(name)
    if v is None:
        return default
    if kind == "int":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif kind == "number":
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    elif kind == "bool":
        ok = isinstance(v, bool)
    elif kind == "str":
        ok = isinstance(v, str)
    elif kind == "object":
        ok = isinstance(v, dict)
    else:  # pragma: no cover - a programming error
        raise AssertionError(kind)
    if not ok:
        want = {"int": "an integer", "number": "a number", "bool": "a boolean", "str": "a string",
                "object": "an object"}[kind]
        raise _bad(name, f"'{name}' must be {want}, got {_json_type(v)}", "invalid_type")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        bounds = f"between {lo} and {hi}" if lo is not None and hi is not None else (
            f">= {lo}" if lo is not None else f"<= {hi}")
        raise _bad(name, f"'{name}' must be {bounds}, got {v}", "invalid_value")
    return v


def _json_type(v: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(v), type(v).__name__)


@dataclass
class GenerationRequest:
    """One HTTP request's work: ``len(prompts) * n`` engine requests (choice index
    ``prompt_index * n + j``), all with the same sampling settings (seed + j for choice j)."""
    prompts: List[Union[str, List[int]]]      # text to tokenize, or token ids
    n: int = 1
    max_tokens: Optional[int] = None          # None: up to the context
    stream: bool = False
    include_usage: bool = False
    logprobs: Optional[int] = None            # None: none; k: the chosen token's and k alternatives
    seed: Optional[int] = None
    sampling: Dict[str, Any] = field(default_factory=dict)   # the rest of Engine.submit's keywords
    model: Optional[str] = None

    def submit_kwargs(self, choice: int, max_tokens: int) -> Dict[str, Any]:
        # choice j gets seed + j: n choices with one seed should differ, and stay reproducible
        seed = None if self.seed is None else (self.seed + choice) % 2**64
        return dict(self.sampling, max_tokens=max_tokens, seed=seed, logprobs=self.logprobs)


def _refuse_unsupported(body: Mapping[str, Any], chat: bool) -> None:
    def no(param: str, why: str) -> APIError:
        return APIError(400, f"'{param}' is not supported by this server ({why})", param=param, code="unsupported")

    if not chat:
        if body.get("echo"):
            raise no("echo", "the prompt is not returned")
        if body.get("suffix"):
            raise no("suffix", "no fill-in-the-middle")
        best_of = body.get("best_of")
        if best_of is not None and best_of != 1 and best_of != body.get("n", 1):
            raise no("best_of", "every sampled choice is returned; use n")
    if body.get("logit_bias"):
        raise no("logit_bias", "no logit biases")
    if chat:
        if body.get("tools") or body.get("functions"):
            raise no("tools", "no tool calls")
        fmt = body.get("response_format")
        if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type", "text") == "text"):
            raise no("response_format", "only plain text")


def _common(body: Any, chat: bool) -> GenerationRequest:
    if not isinstance(body, dict):
        raise APIError(400, f"the request body must be a JSON object, got {_json_type(body)}")
    _refuse_unsupported(body, chat)
    max_tokens = _get(body, "max_tokens", "int", None, lo=1)
    if chat:
        max_tokens = _get(body, "max_completion_tokens", "int", max_tokens, lo=1)
    elif max_tokens is None:
        max_tokens = 16  # OpenAI's default for completions; chat runs to the end of the turn
    stop = body.get("stop")
    if stop is None:
        stops: Tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,) if stop else ()
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if len(stop) > MAX_STOP:
            raise _bad("stop", f"at most {MAX_STOP} stop strings, got {len(stop)}", "invalid_value")
        stops = tuple(s for s in stop if s)  # an empty stop string would end every text at once
    else:
        raise _bad("stop", "'stop' must be a string or an array of strings", "invalid_type")
    stream = _get(body, "stream", "bool", False)
    options = _get(body, "stream_options", "object", {})
    include_usage = bool(stream) and _get(options, "include_usage", "bool", False)
    _get(body, "model", "str")
    _get(body, "user", "str")
    temperature = _get(body, "temperature", "number", 1.0, lo=0, hi=2)
    top_p = _get(body, "top_p", "number", 1.0, lo=0, hi=1)
    if top_p == 0:  # OpenAI takes top_p 0 as "only the most likely token"; ember's sampler wants (0, 1]
        temperature, top_p = 0.0, 1.0
    sampling = dict(
        temperature=temperature,
        top_p=top_p,
        top_k=_get(body, "top_k", "int", 0),                       # llama.cpp's extension; <= 0: off
        min_p=_get(body, "min_p", "number", 0.0, lo=0, hi=1),       # llama.cpp's extension
        presence_penalty=_get(body, "presence_penalty", "number", 0.0, lo=-2, hi=2),
        frequency_penalty=_get(body, "frequency_penalty", "number", 0.0, lo=-2, hi=2),
        repeat_penalty=_get(body, "repeat_penalty", "number", 1.0, lo=0),
        ignore_eos=_get(body, "ignore_eos", "bool", False),
        stop=stops,
    )
    return GenerationRequest(prompts=[], n=_get(body, "n", "int", 1, lo=1, hi=MAX_N), max_tokens=max_tokens,
                             stream=stream, include_usage=include_usage,
                             seed=_get(body, "seed", "int", None, lo=0, hi=2**64 - 1), sampling=sampling,
                             model=body.get("model"))


def _is_ids(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(isinstance(i, int) and not isinstance(i, bool) for i in v)


def parse_completion(body: Any) -> GenerationRequest:
    """A /v1/completions body. prompt: a string, an array of strings, an array of token ids, or
    an array of arrays of token ids."""
    req = _common(body, chat=False)
    p = body.get("prompt")
    if isinstance(p, str):
        prompts: List[Union[str, List[int]]] = [p]
    elif _is_ids(p):
        prompts = [list(p)]
    elif isinstance(p, list) and p and all(isinstance(x, str) or _is_ids(x) for x in p):
        prompts = list(p)
    elif p is None:
        raise _bad("prompt", "'prompt' is required", "missing_required_parameter")
    else:
        raise _bad("prompt", "'prompt' must be a string, an array of strings, an array of token ids or an array "
                             "of arrays of token ids (none empty)", "invalid_type")
    if any(x == "" for x in prompts):
        raise _bad("prompt", "the prompt is empty", "invalid_value")
    req.prompts = prompts
    lp = _get(body, "logprobs", "int", None, lo=0, hi=MAX_LOGPROBS)
    req.logprobs = lp
    return req


def _message_text(content: Any, i: int) -> Optional[str]:
    """A message's content as text: a string, or an array of {"type": "text", "text": ...} parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise _bad(f"messages[{i}].content", "only text content parts are supported", "invalid_value")
            parts.append(part["text"])
        return "".join(parts)
    raise _bad(f"messages[{i}].content", "a message's content must be a string or an array of text parts",
               "invalid_type")


def parse_chat(body: Any) -> Tuple[GenerationRequest, List[Dict[str, Any]]]:
    """A /v1/chat/completions body: the request (prompts left empty: the caller renders the
    chat template) and the messages normalized to {"role", "content": str}."""
    req = _common(body, chat=True)
    msgs = body.get("messages")
    if msgs is None:
        raise _bad("messages", "'messages' is required", "missing_required_parameter")
    if not isinstance(msgs, list) or not msgs:
        raise _bad("messages", "'messages' must be a non-empty array", "invalid_type")
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _bad(f"messages[{i}]", "each message must be an object with a string 'role'", "invalid_type")
        # "developer" is OpenAI's newer name for the system role; templates only know "system"
        role = "system" if m["role"] == "developer" else m["role"]
        out.append({"role": role, "content": _message_text(m.get("content"), i) or ""})
    if _get(body, "logprobs", "bool", False):
        req.logprobs = _get(body, "top_logprobs", "int", 0, lo=0, hi=MAX_LOGPROBS)
    elif body.get("top_logprobs") is not None:
        raise _bad("top_logprobs", "'top_logprobs' needs 'logprobs': true", "invalid_value")
    return req, out


# -- responses ---------------------------------------------------------------------------------
def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def usage_object(prompt_tokens: int, completion_tokens: int) -> Dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


TokenText = Callable[[int], Tuple[str, List[int]]]   # token id -> (its text, its bytes)


def completion_logprobs(entries: Sequence[Mapping[str, Any]], token_text: TokenText, offset: int = 0) -> Dict[str, Any]:
    """The legacy completions format: parallel arrays, alternatives as {text: logprob}."""
    tokens, lps, tops, offsets = [], [], [], []
    for e in entries:
        text = token_text(e["token"])[0]
        tokens.append(text)
        lps.append(e["logprob"])
        tops.append({token_text(t)[0]: lp for t, lp in e.get("top") or ()})
        offsets.append(offset)
        offset += len(text)
    return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}


def chat_logprobs(entries: Sequence[Mapping[str, Any]], token_text: TokenText) -> Dict[str, Any]:
    """The chat format: one object per token with its bytes and its alternatives."""
    def one(tok: int, lp: float) -> Dict[str, Any]:
        text, raw = token_text(tok)
        return {"token": text, "logprob": lp, "bytes": raw}

    content = [dict(one(e["token"], e["logprob"]), top_logprobs=[one(t, lp) for t, lp in e.get("top") or ()])
               for e in entries]
    return {"content": content, "refusal": None}


def completion_object(rid: str, model: str, choices: List[Dict[str, Any]], usage: Dict[str, int],
                      created: Optional[int] = None) -> Dict[str, Any]:
    return {"id": rid, "object": "text_completion", "created": created or int(time.time()), "model": model,
            "choices": choices, "usage": usage}


def completion_chunk(rid: str, model: str, created: int, index: int, text: str, finish_reason: Optional[str],
                     logprobs: Optional[Dict[str, Any]] = None, with_usage: bool = False) -> Dict[str, Any]:
    chunk = {"id": rid, "object": "text_completion", "created": created, "model": model,
             "choices": [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}]}
    if with_usage:
        chunk["usage"] = None  # OpenAI sends null on every chunk but the last when usage is asked for
    return chunk


def chat_object(rid: str, model: str, choices: List[Dict[str, Any]], usage: Dict[str, int],
                created: Optional[int] = None) -> Dict[str, Any]:
    return {"id": rid, "object": "chat.completion", "created": created or int(time.time()), "model": model,
            "choices": choices, "usage": usage}


def chat_chunk(rid: str, model: str, created: int, index: int, delta: Dict[str, Any], finish_reason: Optional[str],
               logprobs: Optional[Dict[str, Any]] = None, with_usage: bool = False) -> Dict[str, Any]:
    chunk = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
             "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]}
    if with_usage:
        chunk["usage"] = None
    return chunk
