"""The parts of a destination's resilience policy: backoff delays, the breaker, the rate limit.

Backoff (``retry:``): the delay after the n-th failed attempt is ``initial × 2^(n-1)`` capped at
``max``, less a random share of up to ``jitter`` of it (so ``max`` is a true maximum and
``initial`` the longest first delay); ``fixed`` waits ``initial`` every time. The delays are
tenacity's wait strategies, fed with the number of attempts that counted.

Breaker (``breaker:``): a pybreaker :class:`~pybreaker.CircuitBreaker` per destination and engine
process. Sends are not made *through* it (pybreaker's calls are synchronous); the worker asks
:meth:`Breaker.wait_closed` before a send and reports the outcome afterwards, which moves
pybreaker's state machine: closed → open after ``failures`` consecutive failures → half-open once
``reset`` has passed (one trial send) → closed on success, open again on failure. With
``failure_rate`` a sliding window of outcomes (the last N calls, or those of the last T seconds)
opens it too, once it holds ``min_calls`` and that share of them failed (a receiver failing every
other send never fails N in a row); the window starts afresh whenever the breaker opens.

Rate limit (``rate_limit: 100/min``): sends are spaced evenly, one every 0.6 s for 100/min, per
destination.

On a PostgreSQL store both are shared by every engine process of the cluster
(:mod:`conduit.store.cluster`): the rate limit's slots are taken from one row, several at a time
when the rate is high (up to a second of sends per statement, fewer while they go unused), so
100/min is 100/min for the whole cluster; a breaker that opens in one process is seen open by
the others within :data:`BREAKER_REFRESH` seconds, and closed again when its trial passes. On
SQLite (embedded: one process) they are kept in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pybreaker
import structlog
from tenacity import RetryCallState, wait_exponential, wait_fixed

from conduit.connectors.base import BreakerPolicy, RetryPolicy
from conduit.core.errors import ApplicationError
from conduit.engine.events import EventLog
from conduit.store.cluster import Cluster

log = structlog.get_logger(__name__)

#: Seconds a process trusts what it last read of a shared breaker.
BREAKER_REFRESH = 1.0
#: Most permits of a shared rate limit taken in one statement.
MAX_PERMITS = 10

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
        "h": 3600.0, "hour": 3600.0}


class Backoff:
    """Delays between attempts (see the module docstring)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self._wait = (wait_fixed(policy.initial) if policy.backoff == "fixed"
                      else wait_exponential(multiplier=policy.initial, max=policy.max))

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th counted failure (1, 2, ...)."""
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = max(1, failures)
        base = float(self._wait(state))
        if self.policy.backoff == "fixed":
            return base
        return min(self.policy.max, base * (1.0 - self.policy.jitter * random.random()))


class Breaker:
    """A pybreaker circuit breaker driven from async code (see the module docstring)."""

    def __init__(self, policy: BreakerPolicy, name: str, *, cluster: Cluster | None = None,
                 events: EventLog | None = None, channel: str | None = None) -> None:
        """``name``: ``<channel>.<destination>``; ``events``: where opening, closing and
        resets are recorded (with ``channel``), in the process that saw them happen."""
        self.policy = policy
        self.name = name
        self._events = events
        self._channel = channel
        self._destination = name[len(channel) + 1:] if channel else name
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=policy.failures, reset_timeout=policy.reset, name=name,
            exclude=[lambda exc: isinstance(exc, ApplicationError)],
            throw_new_error_on_trip=False)
        self._trial: asyncio.Lock = asyncio.Lock()
        #: Shared with the cluster (PostgreSQL store), or None (in this process only).
        self._cluster = cluster
        #: Monotonic time until which another process's opening keeps this breaker open.
        self._shared_open_until = 0.0
        self._read_at = -BREAKER_REFRESH
        self._published: set[asyncio.Task[None]] = set()
        #: (monotonic time, failed) of recent calls, for ``failure_rate``
        self._window: deque[tuple[float, bool]] = deque(maxlen=policy.window_calls)
        #: Why the failure rate last opened it (for the event log).
        self._rate_opened = ""

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        if (self._breaker.current_state == pybreaker.STATE_CLOSED
                and self._shared_open_until > time.monotonic()):
            return pybreaker.STATE_OPEN  # opened by another process of the cluster
        return str(self._breaker.current_state)

    @property
    def failures(self) -> int:
        return int(self._breaker.fail_counter)

    def close(self, *, user: str | None = None) -> None:
        """Close it now (an operator's reset, ``user``): sends go through again."""
        was = self.state
        self._note("breaker.reset", f"breaker of {self._destination} reset by hand (was {was})",
                   user=user)
        self._breaker.close()
        self._window.clear()
        self._shared_open_until = 0.0
        self._publish(opened=False)

    def failure_share(self) -> float | None:
        """Share of failed calls in the window (None without ``failure_rate`` or calls)."""
        if self.policy.failure_rate is None:
            return None
        self._forget_old()
        return (sum(failed for _, failed in self._window) / len(self._window)
                if self._window else None)

    def remaining_open(self) -> float:
        """Seconds until an open breaker lets a trial send through (0 when it would now)."""
        shared = max(0.0, self._shared_open_until - time.monotonic())
        return max(shared, self._local_remaining())

    def _local_remaining(self) -> float:
        if self._breaker.current_state != pybreaker.STATE_OPEN:
            return 0.0
        opened_at = self._breaker._state_storage.opened_at
        if opened_at is None:
            return 0.0
        elapsed = (datetime.now(UTC) - opened_at).total_seconds()
        return max(0.0, self.policy.reset - elapsed)

    async def wait_closed(self) -> None:
        """Wait while the breaker is open; its messages stay in the queue meanwhile."""
        await self.refresh()
        while (remaining := self.remaining_open()) > 0:
            await asyncio.sleep(min(remaining, 0.5))
            await self.refresh()

    async def refresh(self) -> None:
        """Read the cluster's state of this breaker, at most every :data:`BREAKER_REFRESH`
        seconds (a shared breaker costs one small read a second, not one per send)."""
        if self._cluster is None or time.monotonic() - self._read_at < BREAKER_REFRESH:
            return
        self._read_at = time.monotonic()
        try:
            age = await asyncio.to_thread(self._cluster.breaker_open_for, self.name)
        except Exception as exc:  # the store is away: this process's own breaker still works
            log.warning("could not read the cluster's breaker", breaker=self.name,
                        error=type(exc).__name__)
            return
        self._shared_open_until = (0.0 if age is None
                                   else time.monotonic() + self.policy.reset - age)

    @contextlib.asynccontextmanager
    async def gate(self) -> AsyncIterator[None]:
        """Enter to send: waits while open; once ``reset`` has passed, lets one trial send
        through at a time (concurrent workers wait for its outcome)."""
        while True:
            await self.wait_closed()
            if self.state == pybreaker.STATE_CLOSED:
                break
            await self._trial.acquire()
            if self.state == pybreaker.STATE_CLOSED or self.remaining_open() == 0:
                try:
                    yield
                finally:
                    self._trial.release()
                return
            self._trial.release()  # the trial failed meanwhile: open again, wait
        yield

    def success(self) -> None:
        was = self._breaker.current_state
        with contextlib.suppress(pybreaker.CircuitBreakerError):
            self._breaker.call(_succeed)
        if was != pybreaker.STATE_CLOSED:  # a trial passed: closed for the cluster too
            self._shared_open_until = 0.0
            self._publish(opened=False)
            if self._breaker.current_state == pybreaker.STATE_CLOSED:
                self._note("breaker.closed", f"breaker of {self._destination} closed: a trial "
                                             f"send went through")
        if self._count(failed=False):
            self._opened(self._rate_opened)

    def failure(self, error: BaseException) -> bool:
        """Count a failed send; True when the breaker is open afterwards (the failure opened
        it, or it was a failed trial). An HL7 AE/CE counts as a success: the receiver is up."""
        before = self._local_remaining()
        was = self._breaker.current_state
        try:
            self._breaker.call(_fail, error)
        except pybreaker.CircuitBreakerError:
            pass
        except Exception as exc:
            if exc is not error:
                raise
        by_rate = self._count(failed=not isinstance(error, ApplicationError))
        opened = self._breaker.current_state == pybreaker.STATE_OPEN
        if opened and before == 0:  # it opened now (or a trial failed): tell the cluster
            self._publish(opened=True)
        if opened and was == pybreaker.STATE_CLOSED:  # a failed trial is no news
            self._opened(self._rate_opened if by_rate
                         else f"after {self.failures} failures in a row")
        return opened or self.state == pybreaker.STATE_OPEN

    def _publish(self, *, opened: bool) -> None:
        """Tell the cluster, in the background (a send never waits on it)."""
        if self._cluster is None:
            return
        write = (functools.partial(self._cluster.breaker_opened, self.name, self.failures)
                 if opened else functools.partial(self._cluster.breaker_closed, self.name))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop (a tool): write now
            write()
            return
        task = loop.create_task(self._write(write, opened))
        self._published.add(task)
        task.add_done_callback(self._published.discard)

    async def _write(self, write: Any, opened: bool) -> None:
        try:
            await asyncio.to_thread(write)
        except Exception as exc:
            log.warning("could not share the breaker's state", breaker=self.name,
                        state="open" if opened else "closed", error=type(exc).__name__)

    async def settled(self) -> None:
        """Wait until what this breaker told the cluster is written (tests, shutdown)."""
        while self._published:
            await asyncio.gather(*self._published)

    def _count(self, *, failed: bool) -> bool:
        """Note an outcome in the window; open the breaker when the failure rate is reached
        (True then, and ``_rate_opened`` says why)."""
        if self.policy.failure_rate is None:
            return False
        if self.state != pybreaker.STATE_CLOSED:
            self._window.clear()  # opened (or on trial): the next window starts after it
            return False
        self._window.append((time.monotonic(), failed))
        self._forget_old()
        if len(self._window) < self.policy.min_calls:
            return False
        failures = sum(f for _, f in self._window)
        if failures / len(self._window) >= self.policy.failure_rate:
            self._rate_opened = f"{failures} of the last {len(self._window)} sends failed"
            self._breaker.open()
            self._window.clear()
            return True
        return False

    def _opened(self, why: str) -> None:
        self._note("breaker.opened", f"breaker of {self._destination} opened {why}; sends "
                                     f"wait {self.policy.reset:g} s", level="warning")

    def _note(self, kind: str, text: str, *, user: str | None = None,
              level: str = "info") -> None:
        if self._events is not None:
            self._events.record(kind, text, channel=self._channel, user=user, level=level)

    def _forget_old(self) -> None:
        seconds = self.policy.window_seconds
        if seconds is None:
            return
        oldest = time.monotonic() - seconds
        while self._window and self._window[0][0] < oldest:
            self._window.popleft()


def _succeed() -> None:
    return None


def _fail(error: BaseException) -> Any:
    raise error


class RateLimiter:
    """Spaces sends evenly: at most ``count`` per ``per`` seconds, in this process or, given
    the cluster's state, across every process sharing it under ``key``."""

    def __init__(self, text: str, *, cluster: Cluster | None = None, key: str = "") -> None:
        self.count, self.per = parse_rate(text)
        self.interval = self.per / self.count
        self._next = 0.0
        self._lock = asyncio.Lock()
        self._cluster = cluster
        self.key = key
        #: Permits taken from the cluster and not used yet: their monotonic times.
        self._slots: deque[float] = deque()
        #: Permits asked for per statement: at most a second of sends (and MAX_PERMITS);
        #: doubled while all are used, halved when some go unused.
        self._most = max(1, min(MAX_PERMITS, int(1.0 / self.interval)))
        self._batch = 1
        #: Statements sent to the cluster (visible to tests and the bench).
        self.statements = 0

    async def acquire(self) -> None:
        if self._cluster is not None:
            try:
                await self._acquire_shared(self._cluster)
                return
            except Exception as exc:
                # the store is away (its outcomes cannot be recorded either, so sends pause
                # soon): space this process's sends meanwhile
                log.warning("cluster rate limit unavailable: limiting this process only",
                            limit=self.key, error=type(exc).__name__)
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)

    async def _acquire_shared(self, cluster: Cluster) -> None:
        async with self._lock:
            now = time.monotonic()
            dropped = 0
            while self._slots and self._slots[0] < now - self.interval:
                self._slots.popleft()  # a slot missed is lost: used late it would be a burst
                dropped += 1
            if not self._slots:
                self._batch = (max(1, self._batch // 2) if dropped
                               else min(self._most, self._batch * 2))
                slots = await asyncio.to_thread(cluster.take_permits, self.key, self._batch,
                                                self.interval)
                self.statements += 1
                first = time.monotonic() + slots.wait
                self._slots.extend(first + i * slots.interval for i in range(slots.count))
            at = self._slots.popleft()
        wait = at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


def parse_rate(text: str) -> tuple[float, float]:
    """``"100/min"`` → (100, 60.0)."""
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a rate: write e.g. '100/min', '5/s', '1000/hour'")
    return float(match.group(1)), _PER[match.group(2)]
