"""Databases through SQLAlchemy: a polling source and a parameterised-statement destination.

Source: a query run every ``poll_interval``; each row becomes one message (one column's value,
or the whole row as JSON). Rows are remembered either with a *processed marker* (a statement,
e.g. ``UPDATE outbox SET sent = 1 WHERE id = :id``, run with the row's columns once its message
is accepted) or with a *watermark*: the query takes ``:watermark`` and is given the low end of a
look-back window, rows read again inside it are recognised and skipped (see
:mod:`conduit.connectors.watermark` for why this and what it guarantees: rows sharing the last
value, and rows whose transaction commits after a later one's, are read; on PostgreSQL however
long that transaction stays open). Either way a row is marked only after its message is
committed and queued: after a crash it is read again (at-least-once). If the engine cannot take
a message the poll stops there and the row is read again next time.

A processed marker never skips a row (each row carries its own state). A watermark does not
skip one either within those guarantees; what still can be skipped is a row whose transaction
commits more than ``watermark_lookback`` after a later row's, on a database other than
PostgreSQL, or on PostgreSQL when the transaction took its value before writing anything.

Destination: one SQL statement with ``:name`` parameters whose values are templates; bound as
parameters, never pasted into the SQL. Connection failures are retryable; constraint, syntax and
data errors permanent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any, Literal

import orjson
import structlog
from pydantic import Field, model_validator
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from conduit.connectors.base import (
    ConnectorContext,
    DestinationConfig,
    SourceConfig,
)
from conduit.connectors.render import RenderContext
from conduit.connectors.watermark import WatermarkWindow, canonical, digest
from conduit.core.duration import Duration
from conduit.core.errors import PermanentError, RetryableError
from conduit.core.protocols import Inbound, Outbound
from conduit.core.registry import destination, source
from conduit.core.sql import make_engine
from conduit.transforms.template import TemplateText, compile_template

log = structlog.get_logger(__name__)


class DatabaseSourceConfig(SourceConfig):
    """Poll a table or query; each new row is one message."""


    type: Literal["database"]
    url: str = Field(description="SQLAlchemy URL; use ${VAR} for credentials.",
                     examples=["postgresql://conduit@db/his", "sqlite:///data/outbox.db"])
    query: str = Field(
        description="SELECT returning the rows to send, oldest first. With a watermark it "
                    "takes :watermark (the low end of the look-back window: rows at or above "
                    "it are read again and skipped when already sent) and must be ordered by "
                    "the watermark column; a LIMIT is paged through, and must be larger than "
                    "the number of rows sharing one watermark value.",
        examples=["SELECT id, hl7 FROM outbox WHERE sent = 0 ORDER BY id LIMIT 100",
                  "SELECT * FROM results WHERE updated_at >= :watermark "
                  "ORDER BY updated_at, id LIMIT 500"])
    mark: str | None = Field(
        None, description="Statement run once a row's message is accepted, with the row's "
                          "columns as parameters.",
        examples=["UPDATE outbox SET sent = 1 WHERE id = :id"])
    watermark_column: str | None = Field(
        None, description="Column whose values order the rows (an id, a modification time); "
                          "the window's low end is passed to the query as :watermark.",
        examples=["id", "updated_at"])
    watermark_start: str | int = Field(0, description="The watermark before the first row.")
    watermark_lookback: Duration = Field(
        60.0, examples=["60s", "10m"],
        description="How long a value read stays inside the window: a row committed up to "
                    "this long after a later-valued row (less one poll interval) is still "
                    "read. On PostgreSQL the window also stays open while any transaction that "
                    "was open at the read is still running, however long.")
    key_column: str | None = Field(
        None, examples=["id"],
        description="Column identifying a row (the primary key), with the watermark value "
                    "telling a row already sent from a new one or a new version; default: the "
                    "whole row (then a row changed inside the window is sent again). Give it "
                    "when the watermark is a time.")
    content_column: str | None = Field(
        None, description="Column holding the message (e.g. HL7 text); default: the whole "
                          "row as a JSON object.", examples=["hl7"])
    poll_interval: Duration = Field(5.0, description="Time between polls.", examples=["5s"])

    @model_validator(mode="after")
    def _one_way(self) -> DatabaseSourceConfig:
        if (self.mark is None) == (self.watermark_column is None):
            raise ValueError("give exactly one of 'mark' or 'watermark_column'")
        if self.watermark_column is not None and ":watermark" not in self.query:
            raise ValueError("with watermark_column the query must use :watermark")
        if self.key_column is not None and self.watermark_column is None:
            raise ValueError("key_column goes with watermark_column")
        return self


class DatabaseDestinationConfig(DestinationConfig):
    """Run one parameterised statement per message."""

    type: Literal["database"]
    url: str = Field(description="SQLAlchemy URL; use ${VAR} for credentials.",
                     examples=["postgresql://conduit@db/warehouse"])
    statement: str = Field(
        description="SQL with :name parameters (bound, never pasted in).",
        examples=["INSERT INTO results (mrn, code, value) VALUES (:mrn, :code, :value)"])
    parameters: dict[str, TemplateText] = Field(
        default_factory=dict, description="Parameter values, each a template.",
        examples=[{"mrn": "{{ msg['PID-3.1'] }}", "code": "{{ msg['OBX-3.1'] }}",
                   "value": "{{ msg['OBX-5'] }}"}])
    empty_as_null: bool = Field(True, description="Bind an empty rendered value as NULL.")


def _row_content(row: dict[str, Any], column: str | None) -> bytes:
    if column is None:
        return orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS)
    value = row.get(column)
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8")


@source("database", DatabaseSourceConfig, carries="json",
        summary="polling query with a processed marker or a watermark (SQLAlchemy: SQLite, "
                "PostgreSQL, …)")
class DatabaseSource:
    """One polling task; rows handled one by one in the query's order."""

    def __init__(self, config: DatabaseSourceConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self._engine: Engine | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        folder = Path(context.data_dir) / "database"
        self.window = WatermarkWindow(folder / f"{context.channel}.watermark.jsonl",
                                      config.watermark_start, config.watermark_lookback,
                                      legacy=folder / f"{context.channel}.watermark.json")

    async def start(self, inbound: Inbound) -> None:
        self._inbound = inbound
        self._engine = make_engine(self.config.url)
        if self.config.watermark_column is not None:
            await asyncio.to_thread(self._load_state)
        self._stopping.clear()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def describe(self) -> str:
        return f"database://{self.config.url.split('@')[-1]}"

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.poll()
            except SQLAlchemyError as exc:
                log.warning("database poll failed", channel=self.context.channel,
                            error=type(exc).__name__)
            except Exception as exc:
                log.error("database poll failed", channel=self.context.channel,
                          error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.poll_interval)

    async def poll(self) -> int:
        """One poll; the number of rows accepted."""
        if self.config.watermark_column is not None:
            return await self._poll_window(self.config.watermark_column)
        rows, _ = await asyncio.to_thread(self._fetch, None)
        accepted = 0
        for row in rows:
            if self._stopping.is_set():
                break
            content = _row_content(row, self.config.content_column)
            receipt = await self._inbound.receive(content, {"remote": self.describe()})
            if not receipt.accepted and not receipt.permanent:
                log.warning("database row kept for a later poll", channel=self.context.channel,
                            error=receipt.error)
                break
            await asyncio.to_thread(self._remember, row)
            accepted += 1
        return accepted

    async def _poll_window(self, column: str) -> int:
        """Read the whole window (page by page when the query has a LIMIT), send the rows not
        sent yet, and let the window move on only when nothing stopped the poll."""
        started = time.time()
        xmin = await asyncio.to_thread(self._snapshot_xmin)
        cursor = self.window.low()
        visited = {canonical(cursor)}
        high: Any = None
        xmax: int | None = None
        accepted = 0
        while True:
            rows, xmax = await asyncio.to_thread(self._fetch, cursor)
            if not rows:
                break
            for row in rows:
                if self._stopping.is_set():
                    return accepted
                key = row if self.config.key_column is None else row[self.config.key_column]
                row_digest = digest(row[column], key)
                if self.window.has(row_digest):
                    continue
                content = _row_content(row, self.config.content_column)
                receipt = await self._inbound.receive(content, {"remote": self.describe()})
                if not receipt.accepted and not receipt.permanent:
                    log.warning("database row kept for a later poll",
                                channel=self.context.channel, error=receipt.error)
                    return accepted
                await asyncio.to_thread(self.window.remember, row_digest)
                accepted += 1
            high = rows[-1][column]
            if canonical(high) in visited:  # the top of the window (or a query not ordered)
                break
            visited.add(canonical(high))
            cursor = high
        await asyncio.to_thread(self.window.finish, high, xmax, started, xmin, time.time())
        return accepted

    def _fetch(self, watermark: Any) -> tuple[list[dict[str, Any]], int | None]:
        """The query's rows, and on PostgreSQL the snapshot's xmax taken after them."""
        assert self._engine is not None
        params = {"watermark": watermark} if self.config.watermark_column else {}
        with self._engine.connect() as connection:
            result = connection.execute(text(self.config.query), params)
            rows = [dict(r) for r in result.mappings()]
            xmax = None
            if self.config.watermark_column and self._engine.dialect.name == "postgresql":
                xmax = int(connection.execute(
                    text("SELECT txid_snapshot_xmax(txid_current_snapshot())")).scalar_one())
            return rows, xmax

    def _snapshot_xmin(self) -> int | None:
        """PostgreSQL: the oldest transaction id still running (``xmin``); None elsewhere."""
        assert self._engine is not None
        if self._engine.dialect.name != "postgresql":
            return None
        with self._engine.connect() as connection:
            return int(connection.execute(
                text("SELECT txid_snapshot_xmin(txid_current_snapshot())")).scalar_one())

    def _remember(self, row: dict[str, Any]) -> None:
        assert self._engine is not None and self.config.mark is not None
        with self._engine.begin() as connection:
            connection.execute(text(self.config.mark), row)

    def _load_state(self) -> None:
        self.window.load()


@destination("database", DatabaseDestinationConfig,
             summary="parameterised INSERT/UPDATE from templates")
class DatabaseDestination:
    """Runs the statement in its own transaction per message."""

    def __init__(self, config: DatabaseDestinationConfig, context: ConnectorContext) -> None:
        self.config = config
        self._statement = text(config.statement)
        self._parameters = {k: compile_template(v) for k, v in config.parameters.items()}
        self._engine: Engine | None = None

    async def send(self, out: Outbound) -> bytes:
        ctx = RenderContext(out)
        params: dict[str, Any] = {}
        for name, template in self._parameters.items():
            value = ctx.render(template, f"parameter {name}")
            params[name] = None if (value == "" and self.config.empty_as_null) else value
        count = await asyncio.to_thread(self._execute, params)
        return orjson.dumps({"rowcount": count})

    def _execute(self, params: dict[str, Any]) -> int:
        if self._engine is None:
            self._engine = make_engine(self.config.url)
        try:
            with self._engine.begin() as connection:
                return int(connection.execute(self._statement, params).rowcount)
        except OperationalError as exc:
            raise RetryableError(f"database: {type(exc.orig).__name__}: "
                                 f"{_first_line(exc)}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise RetryableError(f"database connection lost: {_first_line(exc)}") from exc
            raise PermanentError(f"database refused the statement: "
                                 f"{type(exc.orig).__name__}: {_first_line(exc)}") from exc
        except SQLAlchemyError as exc:
            raise PermanentError(f"database: {type(exc).__name__}: {_first_line(exc)}") from exc

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def describe(self) -> str:
        return f"database://{self.config.url.split('@')[-1]}"


def _first_line(exc: BaseException) -> str:
    """The driver's message without the SQL and parameters SQLAlchemy appends (PHI)."""
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().split("\n", 1)[0][:300]
