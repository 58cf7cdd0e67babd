"""The engine's event log recorder (issue 19): what happened to the engine, for operators.

Anything with the engine in hand records an event with one call, which never waits and never
fails::

    engine.events.record("channel.edited", "edited in the dashboard", channel="adt",
                         user=principal.name, level="info")

``kind`` is ``<family>.<what>`` (the page filters by either): ``engine.started``,
``channel.deployed|redeployed|undeployed|started|stopped|paused|resumed|failed``,
``destination.blocked|unblocked``, ``breaker.opened|closed|reset``, ``alert.fired|resolved``,
``login.succeeded|failed|refused``, ``logout``, ``user.added|changed|removed``,
``messages.reprocessed``. ``text`` is short and PHI-free (names, counts, message ids, paths,
reasons in their viewers' form; never a message's content or a password); ``level`` is
``info``, ``warning`` or ``error``.

Events are rare, so each is its own small write (``store.eventlog.record``) in a thread, off the
event loop and outside the message writer's group commits: message intake never waits for one.
Writes run one at a time in the order recorded. A write that fails is logged and dropped; the
action it records has happened anyway.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime

import structlog

from conduit.store import Store, eventlog

log = structlog.get_logger(__name__)


class EventLog:
    """Records events in the store's ``event_log`` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: Writes one at a time, in order: a lock of the loop they run on.
        self._order: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def record(self, kind: str, text: str, *, channel: str | None = None,
               user: str | None = None, level: str = "info") -> None:
        """Record an event now (its time is now); the write follows in the background."""
        if level not in eventlog.LEVELS:
            log.warning("event with an unknown level recorded as error", kind=kind,
                        level=level)
            level = "error"
        write = functools.partial(eventlog.record, self.store.engine, kind, text,
                                  channel=channel, user=user, level=level,
                                  at=datetime.now(UTC))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop (a tool, a thread): write now
            self._write_now(kind, write)
            return
        if self._order is None or self._order[0] is not loop:
            self._order = (loop, asyncio.Lock())
        task = loop.create_task(self._write(kind, write, self._order[1]), name="event-log")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @staticmethod
    async def _write(kind: str, write: functools.partial[int], order: asyncio.Lock) -> None:
        try:
            async with order:  # a lock's waiters go first come, first served
                await asyncio.to_thread(write)
        except Exception as exc:
            log.warning("could not record an event", kind=kind, error=type(exc).__name__)

    @staticmethod
    def _write_now(kind: str, write: functools.partial[int]) -> None:
        try:
            write()
        except Exception as exc:
            log.warning("could not record an event", kind=kind, error=type(exc).__name__)

    async def settled(self) -> None:
        """Wait until every event recorded so far is written (tests, before the store
        closes)."""
        loop = asyncio.get_running_loop()
        while mine := [task for task in self._pending if task.get_loop() is loop]:
            await asyncio.gather(*mine, return_exceptions=True)
