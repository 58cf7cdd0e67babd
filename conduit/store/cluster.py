"""Cluster state in PostgreSQL: what every engine process sharing one store shares.

Rate limits, breakers, OAuth2 tokens and job leases are per cluster, not per process, when the
store is PostgreSQL (tables from migration ``0007_cluster_state``). Times are the server's clock
(``clock_timestamp()``), so the hosts' clocks need not agree. An embedded (SQLite) engine is one
process: :func:`cluster_of` answers None and the engine keeps this state in memory.

Each call is one short statement on the store's pool; callers on the event loop run them in a
thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from conduit.store.connect import STORE_NAME

__all__ = ["Cluster", "Lease", "SharedTokens", "Slots", "cluster_of"]

log = structlog.get_logger(__name__)

_NOW = "extract(epoch from clock_timestamp())"
#: First key of every advisory lock Conduit's leases take (``pg_try_advisory_lock(int, int)``);
#: the second is ``hashtext`` of the lease's name.
LEASE_CLASS = 0x436F6E64  # "Cond"
#: Connection name of a lease's dedicated connection in ``pg_stat_activity``.
LEASE_NAME = STORE_NAME + "-lease"


@dataclass(frozen=True, slots=True)
class Slots:
    """Permits taken from a shared rate limit: the first may be used ``wait`` seconds from now,
    each further one ``interval`` later."""

    count: int
    wait: float
    interval: float


class Cluster:
    """The cluster's shared state, reached through the store's SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- rate limits -----------------------------------------------------------------------

    def take_permits(self, key: str, count: int, interval: float) -> Slots:
        """Reserve ``count`` evenly spaced send slots of the limit ``key`` (one statement).

        The row holds the next free slot; taking permits moves it ``count × interval`` on from
        itself or from now, whichever is later (a generic cell rate algorithm), so the slots of
        all processes never overlap and the rate holds across the cluster. Unused slots are
        lost, never lent: the cluster can only send less than the limit, not more."""
        span = count * interval
        with self.engine.begin() as connection:
            # a counter, not a record: no fsync to wait for (a server crash may hand out the
            # last fraction of a second of slots again, once)
            connection.execute(text("SET LOCAL synchronous_commit = off"))
            first, now = connection.execute(text(
                f"INSERT INTO cluster_limits AS l (key, next_at) VALUES (:key, {_NOW} + :span) "
                f"ON CONFLICT (key) DO UPDATE SET next_at = GREATEST(l.next_at, {_NOW}) + :span "
                f"RETURNING l.next_at - :span, {_NOW}"), {"key": key, "span": span}).one()
        return Slots(count, max(0.0, float(first) - float(now)), interval)

    # -- breakers --------------------------------------------------------------------------

    def breaker_opened(self, key: str, failures: int) -> None:
        """Record that the breaker ``key`` opened now."""
        with self.engine.begin() as connection:
            connection.execute(text(
                f"INSERT INTO cluster_breakers (key, opened_at, failures) "
                f"VALUES (:key, {_NOW}, :failures) ON CONFLICT (key) DO UPDATE "
                f"SET opened_at = EXCLUDED.opened_at, failures = EXCLUDED.failures"),
                {"key": key, "failures": failures})

    def breaker_closed(self, key: str) -> None:
        """Record that the breaker ``key`` closed (a trial send passed, or an operator)."""
        with self.engine.begin() as connection:
            connection.execute(text(
                "UPDATE cluster_breakers SET opened_at = NULL, failures = 0 "
                "WHERE key = :key AND opened_at IS NOT NULL"), {"key": key})

    def breaker_open_for(self, key: str) -> float | None:
        """Seconds since the breaker ``key`` was opened, or None while it is closed."""
        with self.engine.connect() as connection:
            age = connection.execute(text(
                f"SELECT {_NOW} - opened_at FROM cluster_breakers "
                f"WHERE key = :key AND opened_at IS NOT NULL"), {"key": key}).scalar()
        return None if age is None else float(age)

    # -- OAuth2 tokens ---------------------------------------------------------------------

    def locked(self, key: str) -> Connection:
        """A connection in a transaction holding the advisory lock of ``key`` until it
        commits or closes: one process at a time fetches a token for it. The caller closes
        the connection (which ends the transaction and releases the lock)."""
        connection = self.engine.connect()
        try:
            connection.execute(text("SELECT pg_advisory_xact_lock(:cls, hashtext(:key))"),
                               {"cls": LEASE_CLASS + 1, "key": key})
        except BaseException:
            connection.close()
            raise
        return connection

    @staticmethod
    def read_token(connection: Connection, key: str, margin: float) -> tuple[bytes, float] | None:
        """The stored token of ``key`` (encrypted) and its seconds left, when more than
        ``margin`` are left."""
        row = connection.execute(text(
            f"SELECT token, expires_at - {_NOW} FROM cluster_tokens "
            f"WHERE key = :key AND expires_at - {_NOW} > :margin"),
            {"key": key, "margin": margin}).one_or_none()
        return None if row is None else (bytes(row[0]), float(row[1]))

    @staticmethod
    def write_token(connection: Connection, key: str, token: bytes, lifetime: float) -> None:
        """Store ``token`` (encrypted) for ``lifetime`` seconds and commit."""
        connection.execute(text(
            f"INSERT INTO cluster_tokens (key, token, expires_at) "
            f"VALUES (:key, :token, {_NOW} + :lifetime) ON CONFLICT (key) DO UPDATE "
            f"SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at"),
            {"key": key, "token": token, "lifetime": lifetime})
        connection.commit()

    # -- leases ----------------------------------------------------------------------------

    def lease(self, name: str) -> Lease:
        return Lease(self.engine, name)


class Lease:
    """A PostgreSQL advisory lock on a connection of its own: held while that connection lives.

    When the holding process dies, or its connection breaks, PostgreSQL releases the lock and
    another process's :meth:`try_take` gets it."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.name = name
        self._engine = create_engine(
            engine.url, poolclass=NullPool,
            connect_args={"application_name": LEASE_NAME, "connect_timeout": 5})
        #: Kept open between attempts (a new PostgreSQL backend per attempt costs far more).
        self._connection: Connection | None = None
        self.held = False

    def try_take(self) -> bool:
        """Take the lock when free (never waits); True when this lease holds it."""
        if self.held:
            return True
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(
                isolation_level="AUTOCOMMIT")
        try:
            self.held = bool(self._connection.execute(
                text("SELECT pg_try_advisory_lock(:cls, hashtext(:name))"),
                {"cls": LEASE_CLASS, "name": self.name}).scalar())
        except BaseException:
            self.release()
            raise
        return self.held

    def alive(self) -> bool:
        """Whether the held lock's connection still answers (else the lock is gone)."""
        if not self.held or self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
        except Exception:
            self.release()
            return False
        return True

    def pid(self) -> int | None:
        """The server process of the holding connection (for drills and tests)."""
        if not self.held or self._connection is None:
            return None
        return int(self._connection.execute(text("SELECT pg_backend_pid()")).scalar_one())

    def release(self) -> None:
        """Give the lock up: closing the connection releases it (nothing left to unlock)."""
        connection, self._connection = self._connection, None
        self.held = False
        if connection is not None:
            try:
                connection.close()
            except Exception:
                connection.invalidate()

    def dispose(self) -> None:
        self.release()
        self._engine.dispose()


class SharedTokens:
    """The cluster's OAuth2 token cache (``connectors.base.TokenCache``): one fetch per token
    for every process, under an advisory lock; stored encrypted with Fernet under a key derived
    from the client's secret, so the table alone does not reveal a usable token."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def token(self, key: str, secret: bytes,
                    fetch: Callable[[], Awaitable[tuple[str, float]]], *,
                    margin: float, stale: str | None = None) -> tuple[str, float]:
        fernet = Fernet(base64.urlsafe_b64encode(
            hashlib.sha256(b"conduit oauth2 token\x00" + secret).digest()))
        row_key = token_key(key)
        try:
            connection = await asyncio.to_thread(self.cluster.locked, row_key)
        except Exception as exc:  # the store is away: this process fetches its own
            log.warning("cluster token cache unavailable: fetching here",
                        error=type(exc).__name__)
            return await fetch()
        try:
            stored = await asyncio.to_thread(Cluster.read_token, connection, row_key, margin)
            if stored is not None:
                try:
                    token = fernet.decrypt(stored[0]).decode()
                except InvalidToken:  # stored by a client with another secret
                    token = None
                if token is not None and token != stale:
                    return token, stored[1]
            token, lifetime = await fetch()
            await asyncio.to_thread(Cluster.write_token, connection, row_key,
                                    fernet.encrypt(token.encode()), lifetime)
            return token, lifetime
        finally:
            await asyncio.to_thread(connection.close)  # ends the transaction: lock released


def cluster_of(engine: Engine) -> Cluster | None:
    """The cluster state of a PostgreSQL store; None for SQLite (one process: in memory)."""
    return Cluster(engine) if engine.dialect.name == "postgresql" else None


def token_key(*parts: str) -> str:
    """A fixed-size key naming one client's tokens (token URL, client id, scope, audience)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
