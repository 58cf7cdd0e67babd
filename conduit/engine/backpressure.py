"""Backpressure: a channel whose destinations fall behind slows its intake instead of queueing.

Taking messages faster than a destination sends them only moves the backlog from the senders
into the engine's queues (and its memory, and the store), with a delivery lag that grows for as
long as the load lasts. So while a destination that is sending has more than ``queued`` messages
waiting, the channel's source waits before it takes the next message: the MLLP listener reads
nothing more on that connection and its ACK comes later, the senders slow to the delivery rate
(Mirth's queue threshold, IRIS's pool limits). A message waits at most ``max_wait`` and is then
taken anyway: a sender is slowed, never refused, and nothing changes in what an ACK means
(durable first). A destination that is down (its last attempt failed, breaker open, blocked, or
its outcomes unrecordable) holds nothing back: its queue grows in the store as before, so one
dead receiver does not stop the channel's other destinations (store and forward); nor does a
destination's rate limit, whose queue holds on purpose what the limit holds back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from conduit.core.duration import Duration

#: How often the destinations' queues are looked at (s) on the intake path, and while intake
#: waits; sooner on the intake path when the messages taken since could have reached the bound.
CHECK_EVERY = 0.005


class BackpressureSettings(BaseModel):
    """When intake slows for a destination that falls behind."""

    model_config = ConfigDict(extra="forbid")

    queued: int | None = Field(
        1000, ge=1, examples=[200],
        description="While a destination that is sending has more than this many messages "
                    "waiting in its queue, the source takes the next message only once it is "
                    "back under (MLLP: the next message on a connection is read and answered "
                    "later), so the senders slow to the delivery rate instead of the backlog "
                    "growing. A destination that is down (its last attempt failed, breaker open, "
                    "blocked) holds nothing back, nor one with a 'rate_limit'. null: never "
                    "slow down.")
    max_wait: Duration = Field(
        2.0, examples=["500ms"],
        description="Longest a message waits for the queue to shrink before it is taken "
                    "anyway: keep it under the senders' ACK timeout (a sender is slowed, never "
                    "refused).")


class Backpressure:
    """One channel's intake gate; ``backlog()`` says how many messages wait in the queue of its
    destination furthest behind among those that are sending."""

    def __init__(self, settings: BackpressureSettings, backlog: Callable[[], int]) -> None:
        self.limit = settings.queued
        self.max_wait = settings.max_wait
        self._backlog = backlog
        self._checked_at = float("-inf")
        self._over = False
        #: The backlog at the last look, and the messages taken since (each adds at most one).
        self._seen = 0
        self._taken = 0
        self._under = asyncio.Event()
        self._under.set()
        self._watch: asyncio.Task[None] | None = None
        #: Messages that waited at the gate so far, and the seconds they waited in all.
        self.held = 0
        self.held_seconds = 0.0

    async def admit(self) -> None:
        """Return at once while the destinations keep up; else once the backlog is back under
        the limit, or after ``max_wait``."""
        if self.limit is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._checked_at >= CHECK_EVERY or self._seen + self._taken >= self.limit:
            self._check(now)
        if not self._over:
            self._taken += 1
            return
        if self._watch is None:
            self._under.clear()
            self._watch = loop.create_task(self._wait_under(), name="backpressure")
        self.held += 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.max_wait):
                await self._under.wait()
        self.held_seconds += loop.time() - now

    def _check(self, now: float) -> bool:
        self._checked_at, self._taken = now, 0
        try:
            self._seen = self._backlog()
        except Exception:  # a queue that cannot say: never hold the senders for it
            self._seen = 0
        self._over = self._seen > (self.limit or 0)
        return self._over

    async def _wait_under(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._check(loop.time()):
                await asyncio.sleep(CHECK_EVERY)
        finally:
            self._under.set()
            self._watch = None

    def close(self) -> None:
        """Let every waiting message in (the channel is stopping)."""
        if self._watch is not None:
            self._watch.cancel()
        self._under.set()
