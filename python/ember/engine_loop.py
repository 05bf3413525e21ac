"""Drive an ``ember.Engine`` from one thread and hand its events to asyncio queues.

The server's event loop must never wait on the engine: ``Engine.step()`` runs for a whole
forward pass (milliseconds to seconds). So one thread owns ``step()``: it sleeps on a condition
while the engine has nothing to do, steps (the GIL is released inside), and passes each
event to the queue of the request it belongs to with ``loop.call_soon_threadsafe`` (one call
per step, not per event: each call wakes the loop through its self-pipe).

submit and cancel come from the event loop's thread. A request's route (its loop and queue)
is registered under the same lock as the submit, and events are routed under that lock, so
an event can never arrive before its route exists.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["EngineLoop", "Overloaded", "FailedEvent"]

log = logging.getLogger("ember.server")


class Overloaded(Exception):
    """More requests are waiting than the server accepts (HTTP 429)."""


@dataclass
class FailedEvent:
    """A finishing event made here (the engine failed, or the server is stopping); the same
    fields as the engine's events."""
    id: int
    error: str
    finish_reason: str = "error"
    finished: bool = True
    text: str = ""
    token_ids: List[int] = field(default_factory=list)
    logprobs: Optional[list] = None
    n_prompt: int = 0
    n_generated: int = 0


Route = Tuple[asyncio.AbstractEventLoop, "asyncio.Queue[Any]"]


def _deliver(items: List[Tuple["asyncio.Queue[Any]", Any]]) -> None:
    for queue, event in items:
        queue.put_nowait(event)


class EngineLoop:
    def __init__(self, engine: Any, max_queue: int):
        self.engine = engine
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._routes: Dict[int, Route] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ember-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, jobs: Sequence[Tuple[List[int], Dict[str, Any]]], queue: "asyncio.Queue[Any]",
               loop: asyncio.AbstractEventLoop) -> List[int]:
        """Submit all of one HTTP request's engine requests, or none: Overloaded when they would
        make the waiting line longer than max_queue, the engine's ValueError for bad arguments
        (those already submitted are cancelled)."""
        with self._cond:
            if self._stopping:
                raise Overloaded("the server is shutting down")
            waiting = self.engine.stats()["waiting"]
            if waiting + len(jobs) > self.max_queue:
                raise Overloaded(f"the server is busy: {waiting} requests are waiting (at most {self.max_queue}); "
                                 "retry later")
            ids: List[int] = []
            try:
                for prompt_ids, kwargs in jobs:
                    ids.append(self.engine.submit(prompt_ids, **kwargs))
            except BaseException:
                for rid in ids:
                    self.engine.cancel(rid)
                raise
            for rid in ids:
                self._routes[rid] = (loop, queue)
            self._cond.notify()
        return ids

    def cancel(self, ids: Sequence[int]) -> None:
        """Stop requests now (a client went away): the engine frees their sequences and blocks."""
        with self._cond:
            for rid in ids:
                self._routes.pop(rid, None)
        for rid in ids:
            self.engine.cancel(rid)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current step, stop the thread, and fail whatever is still in flight."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._cond:
            routes, self._routes = self._routes, {}
        for rid in routes:
            self.engine.cancel(rid)
        self._post([(route, FailedEvent(rid, "the server is shutting down", "cancelled"))
                    for rid, route in routes.items()])

    # -- the engine thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                # The timeout only guards against a has_work() that turns true without a submit.
                while not self._stopping and not self.engine.has_work():
                    self._cond.wait(timeout=1.0)
                if self._stopping:
                    return
            try:
                events = self.engine.step()
            except Exception as e:  # a broken step fails the requests in flight, not the server
                log.exception("engine step failed")
                self._fail_all(f"engine error: {e}")
                time.sleep(0.05)
                continue
            if events:
                self._route(events)

    def _route(self, events: Sequence[Any]) -> None:
        out = []
        with self._cond:
            for ev in events:
                route = self._routes.get(ev.id)
                if route is None:  # cancelled meanwhile: nobody is listening
                    continue
                if ev.finished:
                    del self._routes[ev.id]
                out.append((route, ev))
        self._post(out)

    def _fail_all(self, message: str) -> None:
        with self._cond:
            routes, self._routes = self._routes, {}
        for rid in routes:
            self.engine.cancel(rid)
        self._post([(route, FailedEvent(rid, message)) for rid, route in routes.items()])

    @staticmethod
    def _post(items: Sequence[Tuple[Route, Any]]) -> None:
        by_loop: Dict[asyncio.AbstractEventLoop, list] = {}
        for (loop, queue), ev in items:
            by_loop.setdefault(loop, []).append((queue, ev))
        for loop, batch in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, batch)
            except RuntimeError:  # the loop is closed: its requests are gone with it
                pass
