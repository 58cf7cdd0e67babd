"""The sweeper: re-publishes committed work that was never published.

An ACK means committed and queued (store first, bus second). A crash between the two (kill -9
of the engine, or of RabbitMQ and PostgreSQL together) leaves rows committed whose envelopes
never reached the broker; on RabbitMQ nothing re-queues them at start (the broker holds the
queues), so they would stay QUEUED for ever. Every ``sweep.interval`` this job finds work
untouched for ``sweep.grace`` and never attempted (``store.replay.stuck``) and puts it back
with :func:`~conduit.engine.topology.republish`, once per message (a ``sweep`` event).

Whether an envelope was published cannot be read from the store, so the copies are guarded:
a queue that still has messages waiting is left for a later pass (what looks stuck is likely
in it), and each copy is marked ``recheck``: the worker acts on it only while the store still
has the delivery QUEUED (the message RECEIVED), so an original that was published and is just
slow, sent first, makes its copy a no-op. (A copy and its original sent at the same moment by
two senders can both go: at-least-once, as after any crash.)

One engine of a cluster sweeps: the one holding a PostgreSQL advisory lock
(``pg_try_advisory_lock``, on a connection of its own kept while it runs); on SQLite the engine
is alone. On the in-process bus there is nothing to sweep: a start re-queues from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import timedelta

import structlog
from sqlalchemy import Connection, text

from conduit.bus import Bus, Envelope, source_queue
from conduit.engine.channel import Channel
from conduit.engine.services import Periodic
from conduit.engine.settings import SweepSettings
from conduit.engine.topology import consumed_queues, republish
from conduit.store import Store
from conduit.store.replay import Stuck, mark_swept, stuck
from conduit.store.store import now

log = structlog.get_logger(__name__)

#: The advisory lock's key (any constant the cluster's engines share): b"conduit:" as a bigint.
LOCK_KEY = 0x636F6E647569743A
#: How long a pass waits for the broker's queue depths.
DEPTH_WAIT = 5.0


class Sweeper(Periodic):
    """See the module docstring."""

    def __init__(self, settings: SweepSettings, store: Store, bus: Bus,
                 channels: Callable[[], Mapping[str, Channel]]) -> None:
        super().__init__("sweeper", settings.interval, self.run_once, on_stop=self._release)
        self.settings = settings
        self.store = store
        self.bus = bus
        self.channels = channels
        self._lock: Connection | None = None

    async def run_once(self) -> int | None:
        """One pass; how many messages it put back, None when another engine sweeps."""
        if not self.bus.holds_messages:
            return 0
        if not await asyncio.to_thread(self._lead):
            return None
        swept = 0
        before = now() - timedelta(seconds=self.settings.grace)
        for name, channel in list(self.channels().items()):
            found = await asyncio.to_thread(stuck, self.store, name, before,
                                            self.settings.batch)
            if found:
                swept += await self._put_back(channel, found)
        return swept

    async def _put_back(self, channel: Channel, found: Stuck) -> int:
        configs = {d.name: d for d in channel.destinations}
        busy = await self._waiting(channel)
        received = [] if source_queue(channel.name) in busy else found.received
        queued = {d: ids for d, ids in found.queued.items()
                  if d in configs and not busy.intersection(consumed_queues(channel.name,
                                                                             configs[d]))}
        if not received and not queued:
            return 0
        envelopes = await self._envelopes(channel.name, received, queued)
        await republish(self.bus, channel.name, configs,
                        [e for d, e in envelopes if d is None],
                        [(d, e) for d, e in envelopes if d is not None])
        ids = sorted({e.message_id for _, e in envelopes})
        await mark_swept(self.store, ids, "committed but never published: put back")
        log.warning("put back committed work that was never published", channel=channel.name,
                    messages=len(ids), deliveries=sum(1 for d, _ in envelopes if d))
        return len(ids)

    async def _envelopes(self, channel: str, received: list[int],
                         queued: dict[str, list[int]]) -> list[tuple[str | None, Envelope]]:
        """The stuck work read back from the store, each envelope marked ``recheck``."""
        items: list[tuple[str | None, Envelope]] = []
        if received:
            rows = await asyncio.to_thread(self.store.queued, channel, None, received)
            items.extend((None, Envelope(i, body, c, recheck=True)) for i, body, c in rows)
        for destination, ids in queued.items():
            rows = await asyncio.to_thread(self.store.queued, channel, destination, ids)
            items.extend((destination, Envelope(i, body, c, recheck=True))
                         for i, body, c in rows)
        return items

    async def _waiting(self, channel: Channel) -> set[str]:
        """The channel's queues with messages waiting, or whose depth the bus cannot say
        within DEPTH_WAIT: the stuck-looking work may be in them, so they wait a pass."""
        names = [source_queue(channel.name)] + [q for d in channel.destinations
                                                for q in consumed_queues(channel.name, d)]
        depths: dict[str, int | None] = {}
        deadline = asyncio.get_running_loop().time() + DEPTH_WAIT
        while True:
            depths = {q: self.bus.depth(q) for q in names}
            if all(d is not None for d in depths.values()):
                break
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
        return {q for q, d in depths.items() if d is None or d > 0}

    def _lead(self) -> bool:
        """Whether this engine sweeps: on PostgreSQL while it holds the advisory lock (taken
        on a connection kept open for it), elsewhere always."""
        if self.store.engine.dialect.name != "postgresql":
            return True
        if self._lock is not None:
            try:
                self._lock.execute(text("SELECT 1"))
                self._lock.commit()
                return True
            except Exception:  # the connection (and with it the lock) is gone: try again
                self._drop_lock()
        connection = self.store.engine.connect()
        try:
            held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                           {"key": LOCK_KEY}).scalar())
            connection.commit()
        except Exception:
            connection.close()
            raise
        if not held:
            connection.close()
            return False
        self._lock = connection
        log.info("this engine sweeps for the cluster (advisory lock taken)")
        return True

    def _drop_lock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(Exception):
                self._lock.invalidate()
                self._lock.close()
            self._lock = None

    async def _release(self) -> None:
        if self._lock is None:
            return

        def unlock() -> None:
            assert self._lock is not None
            with contextlib.suppress(Exception):
                self._lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                self._lock.commit()
            with contextlib.suppress(Exception):
                self._lock.close()
            self._lock = None

        await asyncio.to_thread(unlock)
