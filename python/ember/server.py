"""``ember serve``: an OpenAI-compatible HTTP server over ``ember.Engine`` (continuous batching).

    app = create_app("model.gguf", parallel=8)      # a Starlette app; serve() runs it with uvicorn

Endpoints: POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health,
GET /metrics (Prometheus text). Request parsing and the response shapes live in
``openai_api``; the engine thread in ``engine_loop``. Each HTTP request gets one asyncio
queue that the engine thread feeds, so a slow or stalled client never holds up the others;
a client that goes away has its requests cancelled at once, which frees their KV blocks.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import sys
import time
from collections import Counter
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple, Union

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from . import openai_api as oa
from .chat import ChatTemplateError
from .engine_loop import EngineLoop, Overloaded
from .model import Model
from .tokenizer import Tokenizer

__all__ = ["create_app", "serve"]

log = logging.getLogger("ember.server")
ROUTES = ("/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics")


class ServerState:
    """What the handlers share: the model, the engine thread, counters."""

    def __init__(self, model: Model, engine: Any, *, max_queue: int, api_key: Optional[str], model_id: str):
        self.model = model
        self.engine = engine
        self.loop = EngineLoop(engine, max_queue)
        self.api_key = api_key
        self.model_id = model_id
        self.created = int(time.time())
        self.requests: Counter = Counter()   # (endpoint, status) -> count
        # token pieces as bytes (logprobs need them; Model.detokenize would mangle half characters)
        self.tokenizer = Tokenizer.from_gguf(model.path)
        self.token_text = lru_cache(maxsize=1 << 16)(self._token_text)

    def _token_text(self, token_id: int) -> Tuple[str, List[int]]:
        raw = self.tokenizer.token_to_piece(token_id)
        return raw.decode("utf-8", "replace"), list(raw)

    def prompt_ids(self, prompt: Union[str, List[int]], param: str) -> List[int]:
        if isinstance(prompt, str):
            ids = self.model.tokenize(prompt)
        else:
            bad = next((i for i in prompt if not 0 <= i < self.model.n_vocab), None)
            if bad is not None:
                raise oa.APIError(400, f"token id {bad} is out of range (vocabulary of {self.model.n_vocab})",
                                  param=param, code="invalid_value")
            ids = prompt
        if len(ids) >= self.model.n_ctx:
            raise oa.APIError(400, f"the prompt is {len(ids)} tokens; this model's context is {self.model.n_ctx} "
                                   "tokens (prompt and completion together)", param=param,
                              code="context_length_exceeded")
        return ids

    def chat_ids(self, messages: List[Dict[str, Any]]) -> List[int]:
        try:
            text = self.model.apply_chat_template(messages)
        except ChatTemplateError as e:
            raise oa.APIError(400, str(e), param="messages", code="invalid_value") from None
        # a template that writes BOS itself must not get a second one from the tokenizer
        bos = self.tokenizer.bos_id
        has_bos = bos is not None and text.startswith(self.tokenizer.id_to_token(bos))
        return self.prompt_ids(self.model.tokenize(text, add_special=not has_bos), "messages")


def _error(e: oa.APIError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status)


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False, separators=(',', ':'))}\n\n"


class _EventStream(StreamingResponse):
    """Server-sent events with a cleanup that runs however the response ends: done, or the
    client gone (Starlette cancels the stream under ASGI spec < 2.4; with 2.4 send raises
    OSError), even before the generator first ran. on_close is synchronous so that it still
    runs inside a cancelled task."""

    def __init__(self, gen, on_close):
        super().__init__(gen, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.on_close = on_close

    async def stream_response(self, send) -> None:
        try:
            await super().stream_response(send)
        finally:
            self.on_close()
            await self.body_iterator.aclose()


async def _disconnected(request: Request) -> None:
    """Return when the client hangs up (after the body was read, receive() waits for that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class _Choice:
    """One choice as its events arrive."""

    def __init__(self):
        self.text: List[str] = []
        self.logprobs: List[Dict[str, Any]] = []
        self.finish_reason: Optional[str] = None
        self.n_generated = 0
        self.error: Optional[str] = None


async def _generate(request: Request, state: ServerState, req: oa.GenerationRequest, prompts: List[List[int]],
                    chat: bool) -> Response:
    n_ctx = state.model.n_ctx
    jobs = []
    for ids in prompts:
        # no max_tokens (chat's default): up to the context; the engine also stops there
        max_tokens = req.max_tokens if req.max_tokens is not None else n_ctx - len(ids)
        jobs += [(ids, req.submit_kwargs(j, max_tokens)) for j in range(req.n)]
    queue: asyncio.Queue = asyncio.Queue()
    try:
        rids = state.loop.submit(jobs, queue, asyncio.get_running_loop())
    except Overloaded as e:
        raise oa.APIError(429, str(e), type="server_overloaded", code="rate_limit_exceeded") from None
    except (ValueError, TypeError) as e:
        raise oa.APIError(400, str(e), code="invalid_value") from None
    index = {rid: i for i, rid in enumerate(rids)}
    choices = [_Choice() for _ in rids]
    n_prompt = sum(len(ids) for ids in prompts)
    rid_str = oa.new_id("chatcmpl" if chat else "cmpl")
    created = int(time.time())
    pending = set(rids)

    def take(ev) -> Tuple[int, _Choice]:
        i = index[ev.id]
        c = choices[i]
        c.text.append(ev.text)
        if ev.logprobs:
            c.logprobs.extend(ev.logprobs)
        c.n_generated = ev.n_generated
        if ev.finished:
            pending.discard(ev.id)
            c.finish_reason = ev.finish_reason
            c.error = ev.error if ev.finish_reason in ("error", "cancelled") else None
        return i, c

    def usage() -> Dict[str, int]:
        return oa.usage_object(n_prompt, sum(c.n_generated for c in choices))

    def note() -> None:  # for the request's log line
        request.scope["ember.log"] = (f"prompt={n_prompt} completion={sum(c.n_generated for c in choices)} "
                                      f"finish={','.join(sorted({c.finish_reason or 'cancelled' for c in choices}))}")

    if req.stream:
        def close() -> None:
            note()
            if pending:  # the client went away mid-stream (or a sibling choice failed)
                state.loop.cancel(list(pending))

        return _EventStream(_stream(state, req, chat, queue, take, pending, choices, usage, rid_str, created), close)

    collect = asyncio.ensure_future(_collect(queue, take, pending))
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({collect, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if pending:  # the client left (or we were cancelled): free the engine's work now
            collect.cancel()
            state.loop.cancel(list(pending))
    if not collect.done():
        return Response(status_code=499)  # nobody reads it; the log line shows the client left
    note()
    failed = next((c for c in choices if c.error), None)
    if failed:
        status = 503 if failed.finish_reason == "cancelled" else 500
        raise oa.APIError(status, failed.error or "generation failed", type="server_error")
    out = []
    for i, c in enumerate(choices):
        text = "".join(c.text)
        if chat:
            lp = oa.chat_logprobs(c.logprobs, state.token_text) if req.logprobs is not None else None
            out.append({"index": i, "message": {"role": "assistant", "content": text}, "logprobs": lp,
                        "finish_reason": c.finish_reason})
        else:
            lp = oa.completion_logprobs(c.logprobs, state.token_text) if req.logprobs is not None else None
            out.append({"index": i, "text": text, "logprobs": lp, "finish_reason": c.finish_reason})
    build = oa.chat_object if chat else oa.completion_object
    return JSONResponse(build(rid_str, state.model_id, out, usage(), created))


async def _collect(queue: asyncio.Queue, take, pending: set) -> None:
    while pending:
        take(await queue.get())


async def _stream(state: ServerState, req: oa.GenerationRequest, chat: bool, queue: asyncio.Queue, take,
                  pending: set, choices: List[_Choice], usage, rid: str, created: int):
    """The SSE lines of one request (the caller cancels what is left when it ends)."""
    model, with_usage = state.model_id, req.include_usage
    offsets = [0] * len(choices)   # completions' text_offset runs on across chunks
    if chat:  # OpenAI opens each choice with a role delta
        for i in range(len(choices)):
            yield _sse(oa.chat_chunk(rid, model, created, i, {"role": "assistant", "content": ""}, None,
                                     with_usage=with_usage))
    while pending:
        ev = await queue.get()
        i, c = take(ev)
        if c.error:
            yield _sse(oa.APIError(500, c.error, type="server_error").body())
            break
        lps = ev.logprobs or []
        if not (ev.text or ev.finished or lps):
            continue
        reason = ev.finish_reason if ev.finished else None
        if chat:
            lp = oa.chat_logprobs(lps, state.token_text) if req.logprobs is not None else None
            delta = {"content": ev.text} if ev.text else {}
            yield _sse(oa.chat_chunk(rid, model, created, i, delta, reason, lp, with_usage))
        else:
            lp = None
            if req.logprobs is not None:
                lp = oa.completion_logprobs(lps, state.token_text, offsets[i])
            offsets[i] += len(ev.text)
            yield _sse(oa.completion_chunk(rid, model, created, i, ev.text, reason, lp, with_usage))
    else:  # (not after an error)
        if with_usage:
            yield _sse({"id": rid, "object": "chat.completion.chunk" if chat else "text_completion",
                        "created": created, "model": model, "choices": [], "usage": usage()})
    yield "data: [DONE]\n\n"


# -- handlers ------------------------------------------------------------------------------------
async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise oa.APIError(400, f"the request body is not valid JSON: {e}", code="invalid_json") from None


async def completions(request: Request) -> Response:
    state: ServerState = request.app.state.ember
    req = oa.parse_completion(await _body(request))
    prompts = [state.prompt_ids(p, "prompt") for p in req.prompts]
    return await _generate(request, state, req, prompts, chat=False)


async def chat_completions(request: Request) -> Response:
    state: ServerState = request.app.state.ember
    req, messages = oa.parse_chat(await _body(request))
    return await _generate(request, state, req, [state.chat_ids(messages)], chat=True)


def _model_card(state: ServerState) -> Dict[str, Any]:
    return {"id": state.model_id, "object": "model", "created": state.created, "owned_by": "ember",
            "meta": {"n_ctx": state.model.n_ctx, "n_vocab": state.model.n_vocab}}


async def list_models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [_model_card(request.app.state.ember)]})


async def get_model(request: Request) -> Response:
    state: ServerState = request.app.state.ember
    if request.path_params["model"] != state.model_id:
        raise oa.APIError(404, f"the model '{request.path_params['model']}' does not exist", param="model",
                          code="model_not_found")
    return JSONResponse(_model_card(state))


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    state: ServerState = request.app.state.ember
    st = state.engine.stats()
    lines = ["# HELP ember_requests_total HTTP requests by endpoint and status.",
             "# TYPE ember_requests_total counter"]
    for (endpoint, status), n in sorted(state.requests.items()):
        lines.append(f'ember_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')

    def one(name: str, kind: str, help_: str, value: Any) -> None:
        lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {value}"])

    one("ember_prompt_tokens_total", "counter", "Prompt tokens submitted to the engine.", st["prompt_tokens_total"])
    one("ember_generation_tokens_total", "counter", "Tokens generated.", st["generated_tokens_total"])
    one("ember_kv_blocks_used", "gauge", "KV cache blocks in use.", st["kv_blocks_used"])
    one("ember_kv_blocks_total", "gauge", "KV cache blocks in all.", st["kv_blocks_total"])
    one("ember_prefix_cache_blocks", "gauge", "KV blocks held by the prefix cache.", st["prefix_cache_blocks"])
    one("ember_prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.",
        st["prefix_queries"])
    one("ember_prefix_cache_hit_tokens_total", "counter", "Prompt tokens found in the prefix cache.",
        st["prefix_hit_tokens"])
    one("ember_preemptions_total", "counter", "Requests preempted for KV space.", st["preemptions"])
    one("ember_requests_waiting", "gauge", "Requests in the queue.", st["waiting"])
    one("ember_requests_running", "gauge", "Requests being generated.", st["running"])
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


# -- errors, auth, the access log -----------------------------------------------------------------
async def _api_error(request: Request, exc: Exception) -> Response:
    return _error(exc)  # type: ignore[arg-type]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = {404: "not_found_error", 405: "invalid_request_error"}.get(exc.status_code, "invalid_request_error")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return _error(oa.APIError(exc.status_code, message, type=kind))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return _error(oa.APIError(500, f"internal error: {exc}", type="server_error"))


class _Gate:
    """ASGI middleware: the API key check (every route but /health) and one log line per request,
    written when the response has ended (streams included), counted for /metrics."""

    def __init__(self, app, state: ServerState):
        self.app, self.state = app, state
        self.key = f"Bearer {state.api_key}".encode() if state.api_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = [0]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if self.key and scope["path"] != "/health" and not self._authorized(scope):
                e = oa.APIError(401, "invalid or missing API key (send 'Authorization: Bearer KEY')",
                                code="invalid_api_key")
                await _error(e)(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            path = scope["path"]
            endpoint = path if path in ROUTES or path.startswith("/v1/models/") else "other"
            endpoint = "/v1/models" if endpoint.startswith("/v1/models/") else endpoint
            code = status[0] or 499  # no response started: the client left first
            self.state.requests[(endpoint, code)] += 1
            client = scope.get("client") or ("-", 0)
            log.info('%s:%s "%s %s" %d %.3fs %s', client[0], client[1], scope["method"], path, code,
                     time.perf_counter() - start, scope.get("ember.log", ""))

    def _authorized(self, scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self.key)
        return False


# -- the app ---------------------------------------------------------------------------------------
def create_app(model: Union[str, os.PathLike, Model], *, parallel: int = 8, max_queue: int = 128,
               api_key: Optional[str] = None, n_ctx: int = 4096, n_threads: Optional[int] = None,
               token_budget: int = 512, kv_blocks: Optional[int] = None, model_id: Optional[str] = None,
               engine: Any = None) -> Starlette:
    """The server as a Starlette app. model: a GGUF path (loaded with n_ctx and n_threads) or a
    loaded Model. parallel: requests generated at once; max_queue: requests allowed to wait
    beyond those (more get 429); api_key: required as a Bearer token everywhere but /health;
    token_budget: tokens per engine step; kv_blocks: the KV pool (None: the engine's default);
    engine: an Engine over the model to use instead of making one."""
    if not isinstance(model, Model):
        model = Model(model, n_ctx=n_ctx, n_threads=n_threads, verbose=False)
    if engine is None:
        from .engine import Engine

        engine = Engine(model, max_running=parallel, token_budget=token_budget, kv_blocks=kv_blocks)
    if model_id is None:
        model_id = os.path.basename(model.path)
        model_id = model_id[:-5] if model_id.endswith(".gguf") else model_id
    state = ServerState(model, engine, max_queue=max_queue, api_key=api_key, model_id=model_id)

    @asynccontextmanager
    async def lifespan(app):
        state.loop.start()
        try:
            yield
        finally:
            state.loop.stop()

    routes = [Route("/v1/completions", completions, methods=["POST"]),
              Route("/v1/chat/completions", chat_completions, methods=["POST"]),
              Route("/v1/models", list_models, methods=["GET"]),
              Route("/v1/models/{model:path}", get_model, methods=["GET"]),
              Route("/health", health, methods=["GET"]),
              Route("/metrics", metrics, methods=["GET"])]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(_Gate, state=state)],
                    exception_handlers={oa.APIError: _api_error, HTTPException: _http_error, Exception: _server_error})
    app.state.ember = state
    return app


def serve(model_path: str, *, host: str = "127.0.0.1", port: int = 8080, parallel: int = 8, max_queue: int = 128,
          api_key: Optional[str] = None, n_ctx: int = 4096, n_threads: Optional[int] = None, token_budget: int = 512,
          kv_blocks: Optional[int] = None, model_id: Optional[str] = None) -> None:
    """Load the model and serve until SIGINT/SIGTERM (uvicorn finishes the requests in flight,
    for up to 30 s, then the engine thread stops)."""
    import signal

    import uvicorn

    # uvicorn finishes the requests in flight on SIGTERM, then re-raises the signal under the
    # handler it found: make that a clean exit (status 0) rather than death by signal.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if not logging.getLogger("ember").handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        logging.getLogger("ember").addHandler(handler)
        logging.getLogger("ember").setLevel(logging.INFO)
    # The engine makes its own context and KV pool on the model's weights; the Model's own KV
    # cache would go unused, so it gets one block.
    model = Model(model_path, n_ctx=n_ctx, n_threads=n_threads, kv_blocks=1, verbose=False)
    app = create_app(model, parallel=parallel, max_queue=max_queue, api_key=api_key, token_budget=token_budget,
                     kv_blocks=kv_blocks, model_id=model_id)
    info, st = model.info, app.state.ember.engine.stats()
    print(model.load_report().splitlines()[0], file=sys.stderr)
    print(f"ember: KV cache {st['kv_blocks_total'] * info['kv_bytes'] / info['kv_blocks'] / 2**20:.1f} MiB "
          f"({info['kv_type']}): {st['kv_blocks_total']} blocks of {info['kv_block_size']} tokens for up to "
          f"{parallel} requests at once, {model.n_ctx} tokens each", file=sys.stderr)
    log.info("ember: serving %s on http://%s:%d/v1 (%d in parallel, %d may wait%s)", app.state.ember.model_id,
             host, port, parallel, max_queue, ", API key required" if api_key else "")
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, timeout_graceful_shutdown=30)
