"""How much expensive work runs at once: argon2id hashing and sealing on the server.

One argon2id hash of a receipt code or a password takes 64 MiB and most of a core for a
fraction of a second. Without a bound, memory grows with the number of requests in
flight (each WSGI thread could hold a hash), and beyond what the cores can do every answer
just gets slower until clients time out, never knowing whether their report arrived. So
each expensive step takes a slot first: at most `slots` run at once (one per core by
default), at most as many again may wait for one, and only for a short time. A request
that finds no slot gets `Busy`, which the routes answer with 503 and Retry-After, having
stored nothing; a device keeps its report queued and sends it again later (static/js/queue.js).

The gate is per process: `create_app` makes one and keeps it on the app. Domain functions
take it as an argument; `None` (the CLI, tests) means no bound.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

# What a refused client is told to wait. Long enough for a burst to drain (a slot frees
# every few tenths of a second), short enough that a person who presses again is served.
RETRY_AFTER_SECONDS = 10


class Busy(Exception):
    """No slot for expensive work: answer 503 with Retry-After; nothing was stored."""

    def __init__(self, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__("busy")
        self.retry_after = retry_after


class Gate:
    """At most `slots` holders at once; at most `waiting` more queue for `wait_seconds`."""

    def __init__(self, slots: int, *, waiting: int, wait_seconds: float) -> None:
        if slots < 1 or waiting < 0 or wait_seconds < 0:
            raise ValueError("a gate needs at least one slot and no negative wait")
        self.slots = slots
        self.waiting = waiting
        self.wait_seconds = wait_seconds
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._queued = 0
        self._held = 0

    def saturated(self) -> bool:
        """Every slot taken and the queue full: a request now would be refused. A hint, to
        refuse before doing any other work; the slot itself decides."""
        with self._lock:
            return self._held >= self.slots and self._queued >= self.waiting

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the block, or raise Busy at once (queue full) or after the wait."""
        if not self._free.acquire(blocking=False):
            with self._lock:
                if self._queued >= self.waiting:
                    raise Busy()
                self._queued += 1
            try:
                got = self._free.acquire(timeout=self.wait_seconds)
            finally:
                with self._lock:
                    self._queued -= 1
            if not got:
                raise Busy()
        with self._lock:
            self._held += 1
        try:
            yield
        finally:
            with self._lock:
                self._held -= 1
            self._free.release()


def slot(gate: Gate | None) -> AbstractContextManager[None]:
    """A slot of `gate`, or nothing to hold when there is no gate."""
    return gate.slot() if gate is not None else nullcontext()
