"""HL7 v2 over MLLP: a listener that answers ACKs only for durable messages, and a sender.

The source parses just enough to build the ACK (lazy parse), hands the bytes to the engine, and
answers ``AA`` only once the engine says the message is committed and queued. Anything that stops
that is answered ``AE`` (engine unavailable: the sender keeps the message) or ``AR`` (the bytes are
not HL7, or a header no step could route safely), with an ERR segment (table 0357 code and
location) where an ACK can be built. Framing errors never stop the listener. A message that asks
for enhanced acknowledgement (MSH-15/16) gets the commit and application ACKs it asks for, an ACK
message none (``conduit.hl7.acceptance``, ``conduit.hl7.replies``); the sender reads the ACKs
its message asks for the same way.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import Callable
from typing import Any, Literal

import structlog
from pydantic import Field

from conduit.connectors.base import (
    ConnectorContext,
    DestinationConfig,
    ListenerConfig,
)
from conduit.connectors.hl7batch import BatchError, batch_ack, batch_reject, split_batch
from conduit.connectors.listening import Refusals, bind_listener
from conduit.connectors.tls import ClientTls, ServerTls
from conduit.core.duration import Duration
from conduit.core.errors import ApplicationError, ApplicationReject, HL7ParseError, RetryableError
from conduit.core.protocols import Inbound, Outbound, Receipt
from conduit.core.reason import Reason, value
from conduit.core.registry import destination, source
from conduit.hl7.acceptance import (
    AckRequest,
    asked_for,
    assess,
    error_code_for_problem,
    next_ack,
)
from conduit.hl7.ack import (
    build_ack_bytes,
    build_ack_for_unparseable,
    message_control_id,
    parse_ack,
)
from conduit.hl7.message import Message
from conduit.hl7.mllp import FramingError, frame, read_frame
from conduit.hl7.replies import Outcome, replies

log = structlog.get_logger(__name__)


class MllpSourceConfig(ListenerConfig):
    """Listen for HL7 v2 over MLLP (TCP with 0x0B ... 0x1C 0x0D framing)."""

    type: Literal["mllp"]
    host: str = Field("0.0.0.0", description="Address to listen on.", examples=["127.0.0.1"])
    port: int = Field(ge=0, le=65535, description="TCP port to listen on (0 = any free port).",
                      examples=[2575])
    max_message_bytes: int = Field(
        16 * 1024 * 1024, ge=1024,
        description="Largest message accepted; a larger frame is answered AR and discarded.")
    idle_timeout: Duration = Field(
        300.0, description="Close a connection that sends nothing for this long between "
                           "messages.", examples=["5m"])
    frame_timeout: Duration = Field(
        60.0, examples=["30s"],
        description="A message must arrive whole within this long of its first byte, however "
                    "slowly its bytes trickle in; otherwise the connection is closed (the "
                    "sender has no ACK and resends), so slow senders cannot hold connections.")
    max_connections: int = Field(
        1000, ge=1, description="Concurrent connections accepted; a connection beyond it is "
                                "closed at once (the sender retries), never left waiting.")
    max_connections_per_client: int = Field(
        64, ge=1, examples=[16],
        description="Concurrent connections from one remote address; one beyond it is closed "
                    "at once and logged with the address, so one client cannot take every "
                    "connection.")
    split_batches: bool = Field(
        True, description="A frame holding an FHS/BHS batch (or several messages) is split: "
                          "each message is stored and routed on its own, and the answer is a "
                          "batch ACK with one ACK per message.")
    tls: ServerTls | None = Field(None, description="MLLP over TLS (and mutual TLS).")
    message_types: list[str] | None = Field(
        None, examples=[["ADT", "ORU^R01"]],
        description="Message types taken (MSH-9.1, or MSH-9.1^MSH-9.2 for one event); any other "
                    "is refused with AR (CR in enhanced mode), ERR-3 200 (type) or 201 (event), "
                    "and kept as ERROR. Default: every type.")
    processing_ids: list[str] | None = Field(
        None, examples=[["P"]],
        description="Processing ids taken (MSH-11.1; e.g. only P on a production channel); "
                    "any other is refused with ERR-3 202. Default: P, D, T or empty.")


class MllpDestinationConfig(DestinationConfig):
    """Send HL7 v2 over MLLP and wait for the receiver's ACK."""

    type: Literal["mllp"]
    host: str = Field(description="Receiver's host.", examples=["10.1.2.3", "lab.example.org"])
    port: int = Field(ge=1, le=65535, description="Receiver's port.", examples=[2576])
    ack_timeout: Duration = Field(30.0, description="How long to wait for the ACK.",
                                  examples=["30s"])
    connect_timeout: Duration = Field(10.0, description="How long to wait for a connection.")
    check_control_id: bool = Field(
        True, description="Treat an ACK whose MSA-2 is not our MSH-10 as a failure.")
    connections: int = Field(
        1, ge=1, le=64, examples=[4],
        description="Connections to the receiver kept open, each carrying one message at a "
                    "time: up to this many messages wait for their ACK at once (as many as the "
                    "destination's 'concurrency' lets through). The default 1 suits receivers "
                    "that accept a single connection (Mirth's sender uses one); ordered and "
                    "partitioned destinations send one message at a time per queue whatever "
                    "this says.")
    tls: ClientTls | None = Field(None, description="MLLP over TLS: CA to trust, client "
                                                    "certificate for mutual TLS.")
    ack_grace: Duration = Field(
        1.0, examples=["500ms"],
        description="A message whose MSH-15/16 make its ACK depend on the outcome (ER: only on "
                    "error, SU: only on success) gets this long for it; silence then means "
                    "success. A message that asks for no ACK (NE/NE) and an ACK message are sent "
                    "without waiting.")


# --- wire -----------------------------------------------------------------------------------

class ReadDeadline:
    """A time limit on each frame read on one connection, without a timer per read.

    ``asyncio.wait_for`` makes a Task per read and ``asyncio.timeout`` schedules and cancels a
    timer per read (under uvloop a libuv timer handle each time): per message, measured over 16
    ping-pong connections, wait_for costs ~8-15 us, asyncio.timeout ~6-9 us, this ~0. Here one
    timer per connection wakes at most about once per limit: a read past its limit by then gets
    its task cancelled and raises TimeoutError (as asyncio.timeout does: a cancellation from
    elsewhere, e.g. stop(), stays a cancellation); otherwise the timer is set again for the
    current read's limit, or dropped until the next read when none is going.

    With ``frame`` (the listener) a read has two limits: ``seconds`` for a frame's first byte to
    come (idle between messages), then ``frame`` for the rest of it, however slowly it trickles
    in, so a sender cannot hold a connection by sending a byte now and then. ``in_frame`` says
    which one a TimeoutError came from. The timer is never set further ahead than the shorter
    limit, so it is never late for the frame limit that follows a first byte.
    """

    __slots__ = ("_due", "_expired", "_loop", "_period", "_task", "_timer", "frame", "in_frame",
                 "seconds")

    def __init__(self, seconds: float, frame: float | None = None) -> None:
        self.seconds = seconds
        self.frame = frame
        self.in_frame = False
        self._period = seconds if frame is None else min(seconds, frame)
        self._loop = asyncio.get_running_loop()
        self._due: float | None = None  # loop time the current read must end by; None between
        self._task: asyncio.Task[object] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._expired = False

    async def read(self, reader: asyncio.StreamReader, max_bytes: int) -> bytes | None:
        """``read_frame`` within the limits; TimeoutError when it takes longer."""
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        try:
            if self.frame is None:
                self._arm(self.seconds)
            else:
                self.in_frame = False
                if _waiting_for_a_frame(reader):
                    self._arm(self.seconds)
                    await reader._wait_for_data("read_frame")  # type: ignore[attr-defined]
                self.in_frame = True
                self._arm(self.frame)
            return await read_frame(reader, max_bytes)
        except asyncio.CancelledError:
            if self._expired:
                self._expired = False
                if task.uncancel() == 0:  # our cancellation alone
                    raise TimeoutError from None
            raise
        finally:
            self._due = None

    def _arm(self, limit: float) -> None:
        now = self._loop.time()
        self._due = now + limit
        if self._timer is None:
            self._timer = self._loop.call_at(now + min(limit, self._period), self._check)

    def _check(self) -> None:
        due, task = self._due, self._task
        if due is None or task is None:
            self._timer = None  # no read going: the next read sets the timer again
            return
        now = self._loop.time()
        # timers may fire up to a clock tick early (uvloop: 1 ms); do not spin until `due`
        if now + 0.001 >= due:
            self._timer = None
            self._expired = True
            task.cancel()
        else:
            self._timer = self._loop.call_at(min(due, now + self._period), self._check)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


_BETWEEN_FRAMES = b"\r\n \t"


def _waiting_for_a_frame(reader: asyncio.StreamReader) -> bool:
    """No byte of the next frame is in yet (whitespace a sender leaves after a frame's end is
    dropped: it starts no frame). Reads the stream's buffer: asyncio has no public peek."""
    buffer: bytearray = reader._buffer  # type: ignore[attr-defined]
    if buffer and buffer[0] in _BETWEEN_FRAMES:
        kept = buffer.lstrip(_BETWEEN_FRAMES)
        del buffer[:len(buffer) - len(kept)]
    return not buffer and not reader.at_eof()


# --- source ---------------------------------------------------------------------------------

#: How long a stopping listener lets a connection inside a message, or waiting for its answer,
#: finish before closing it.
STOP_GRACE = 5.0


class _Peer:
    """One listener connection as ``stop`` sees it: waiting for a message (closed at once) or
    inside one (given time to be answered)."""

    __slots__ = ("deadline", "reader", "reading")

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.reading = True
        self.deadline: ReadDeadline | None = None

    def idle(self) -> bool:
        """Waiting for a message's first byte: nothing of it would be lost by closing."""
        return self.reading and (self.deadline is None or not self.deadline.in_frame)




@source("mllp", MllpSourceConfig, carries="hl7v2",
        summary="HL7 v2 listener: ACK `AA` after commit, `AE`/`AR` with ERR otherwise (ERR-3 "
                "from table 0357, ERR-2 the field); enhanced mode when MSH-15/16 are sent: "
                "commit ACK `CA`/`CE`/`CR`, then the application ACK, each as table 0155 asks "
                "(see [ACKs](#acks-hl7-v2-chapter-2)); an ACK received is stored and routed, "
                "never answered; optional `message_types`/`processing_ids`; HL7 batches "
                "(FHS/BHS) split per message with a batch ACK, a damaged batch refused whole; "
                "TLS and mutual TLS")
class MllpSource:
    """An MLLP listener: one task per connection, messages on a connection answered in order."""

    def __init__(self, config: MllpSourceConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self._server: asyncio.Server | None = None
        self._socket: socket.socket | None = None
        self._connections: dict[asyncio.Task[None], _Peer] = {}
        self._per_client: dict[str, int] = {}
        self._refusals = Refusals(context.channel, "mllp")
        self._closing = False
        self.port = config.port

    async def start(self, inbound: Inbound) -> None:
        self._inbound = inbound
        config = self.config
        backlog = min(max(config.max_connections, 128), 4096)
        listening = self.context.listening
        sock = (listening.take(config.host, config.port, backlog) if listening is not None
                else bind_listener(config.host, config.port, backlog))
        tls = config.tls.context() if config.tls else None
        # The stream limit bounds one frame in memory; a larger frame is discarded and NAKed.
        try:
            self._server = await asyncio.start_server(
                self._serve, sock=sock, backlog=backlog, limit=config.max_message_bytes + 64,
                ssl=tls,
                ssl_handshake_timeout=min(config.frame_timeout, 60.0) if tls else None)
        except BaseException:
            self._release(sock)
            sock.close()
            raise
        self._socket = sock
        self.port = sock.getsockname()[1]

    async def stop(self) -> None:
        """Stop listening at once (a redeployed source may hold the same socket: it goes on
        accepting); a connection waiting for its next message is closed, one inside a message
        or waiting for its answer gets up to STOP_GRACE to be answered (its message may be
        stored by then: never dropped unanswered while it can be helped)."""
        if self._server is None:
            return
        server, self._server = self._server, None
        self._closing = True
        server.close()
        if self._socket is not None:
            self._release(self._socket)
            self._socket = None
        for task, peer in list(self._connections.items()):
            if peer.idle():
                task.cancel()
        if self._connections:
            _, late = await asyncio.wait(list(self._connections), timeout=STOP_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await server.wait_closed()

    def _release(self, sock: socket.socket) -> None:
        if self.context.listening is not None:
            self.context.listening.release(sock)

    def describe(self) -> str:
        return f"mllp{'s' if self.config.tls else ''}://{self.config.host}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        limit = self._over_limit(address)
        if limit is not None:  # closed at once: never held waiting for a place
            self._refusals.note(address, limit)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = state = _Peer(reader)
        self._per_client[address] = self._per_client.get(address, 0) + 1
        try:
            await self._converse(reader, writer, remote, state)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.pop(task, None)
            left = self._per_client.pop(address, 1) - 1
            if left:
                self._per_client[address] = left
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _over_limit(self, address: str) -> str | None:
        """The limit a new connection from ``address`` would pass, if any."""
        if self._closing:
            return "closing"
        if len(self._connections) >= self.config.max_connections:
            return "max_connections"
        if self._per_client.get(address, 0) >= self.config.max_connections_per_client:
            return "max_connections_per_client"
        return None

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        remote: str, state: _Peer) -> None:
        deadline = state.deadline = ReadDeadline(self.config.idle_timeout,
                                                 frame=self.config.frame_timeout)
        try:
            await self._exchange(reader, writer, remote, deadline, state)
        finally:
            deadline.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        remote: str, deadline: ReadDeadline, state: _Peer) -> None:
        max_bytes = self.config.max_message_bytes
        transport = writer.transport

        def write(ack: bytes) -> None:
            writer.write(frame(ack))

        while not self._closing:
            state.reading = True
            try:
                payload = await deadline.read(reader, max_bytes)
            except TimeoutError:
                if deadline.in_frame:
                    log.warning("mllp message not complete within frame_timeout, closing",
                                channel=self.context.channel, remote=remote)
                else:
                    log.info("mllp connection idle, closing", channel=self.context.channel,
                             remote=remote)
                return
            except FramingError as exc:
                state.reading = False
                log.warning("mllp framing error", channel=self.context.channel, remote=remote,
                            error=str(exc))
                await self._inbound.reject(b"", f"MLLP framing error: {exc}", {"remote": remote})
                # table 0357 has no transport code: 207, with the reason in MSA-3 and ERR-3.2
                writer.write(frame(build_ack_for_unparseable(b"", f"MLLP framing error: {exc}")
                                   or b""))
                await writer.drain()
                if reader.at_eof():
                    return
                continue
            finally:
                state.reading = False
            if payload is None:
                return
            answers = await self._respond(payload, remote, write)
            if answers:  # none for an ACK received, or when MSH-15/16 say NE
                if len(answers) == 1:
                    writer.write(frame(answers[0]))
                else:
                    writer.writelines([frame(answer) for answer in answers])
                # an ACK usually leaves at once; wait only while the sender does not read
                # (drain() is a coroutine and two checks per message even when nothing waits;
                # a connection lost meanwhile ends the next read instead)
                if transport.get_write_buffer_size():
                    await writer.drain()

    async def _respond(self, payload: bytes, remote: str,
                       write: Callable[[bytes], None]) -> list[bytes]:
        """The answers to one frame: a message's ACKs (none, one, or a commit ACK then an
        application ACK), or a batch's batch ACK. ``write`` sends an ACK at once (a commit ACK
        that must not wait for delivery)."""
        if not self.config.split_batches:
            return await self._answer(payload, remote, write=write)
        try:
            batch = split_batch(payload)
        except BatchError as exc:
            await self._inbound.reject(payload, f"HL7 batch: {exc}", {"remote": remote})
            return [batch_reject(payload, exc)]
        if batch is None:
            return await self._answer(payload, remote, write=write)
        acks = [ack for number, message in enumerate(batch.messages, start=1)
                for ack in await self._answer(message, f"{remote}#{number}",
                                              f"{batch.describe()} message {number}")]
        return [batch_ack(batch, acks)]

    async def _answer(self, payload: bytes, remote: str, member: str | None = None, *,
                      write: Callable[[bytes], None] | None = None) -> list[bytes]:
        """Hand one message to the engine; the ACKs that say what became of it (HL7 v2
        chapter 2: original or enhanced mode, see conduit.hl7.replies)."""
        try:
            message = Message.parse(payload)
        except HL7ParseError as exc:
            await self._inbound.reject(payload, str(exc), {"remote": remote})
            reason = f"{member}: {exc}" if member else str(exc)
            return [build_ack_for_unparseable(payload, reason, error_code=exc.error_code,
                                              error_location=exc.location) or b""]
        found = assess(message, message_types=self.config.message_types,
                       processing_ids=self.config.processing_ids)
        refusal = found.refusal
        if refusal is not None:
            await self._inbound.reject(payload, refusal.reason, {"remote": remote})
            outcome = Outcome(False, False, refusal.reason, refusal.error_code, refusal.location,
                              refused=True)
        else:
            meta: dict[str, Any] = {"message": message, "remote": remote}
            sent: list[bool] = []
            if (write is not None and self.config.ack == "after-delivery"
                    and not found.acknowledgement and found.request.wants_accept(True)):
                def commit_ack() -> None:  # stored and queued: CA now, not after delivery
                    write(build_ack_bytes(message, "CA"))
                    sent.append(True)
                meta["on_commit"] = commit_ack
            receipt = await self._inbound.receive(payload, meta)
            outcome = _outcome(receipt, commit_sent=bool(sent))
        if found.acknowledgement:
            return []  # an ACK is never acknowledged (it would start an endless exchange)
        return replies(message, found.request, outcome)


def _outcome(receipt: Receipt, *, commit_sent: bool = False) -> Outcome:
    """What the engine's receipt means for the sender's ACKs."""
    if receipt.accepted:
        response = receipt.response
        own = response if response and response.lstrip().startswith(b"MSH") else None
        # own: after-delivery, the receiver's answer
        return Outcome(True, True, response=own, commit_sent=commit_sent)
    reason = receipt.error or "not accepted"
    if receipt.permanent:  # kept, but invalid: resending cannot help
        return Outcome(True, False, reason, error_code_for_problem(reason.split("; ", 1)[0]),
                       commit_sent=commit_sent)
    committed = receipt.message_id is not None and not receipt.resend
    return Outcome(committed, False, reason, commit_sent=commit_sent)


# --- destination ----------------------------------------------------------------------------


class _Connection:
    """One connection of a destination's pool, the ACK time limit on its reads, and the control
    ids sent on it lately (an ACK for one of them arriving late is skipped, not taken for the
    current message's: the AA after a CA, an answer to an ACK message or to NE/NE)."""

    __slots__ = ("deadline", "reader", "sent", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 ack_timeout: float) -> None:
        self.reader = reader
        self.writer = writer
        self.deadline = ReadDeadline(ack_timeout)
        self.sent: collections.deque[str] = collections.deque(maxlen=16)

    def usable(self) -> bool:
        """Not closed by us, and the receiver has not closed its side (which it does to idle
        connections): sending on such a connection can only fail."""
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.deadline.close()
        self.writer.close()


#: An ACK received, and what ``parse_ack`` read in it (None: unreadable).
_Answer = tuple[bytes, tuple[str, str, str] | None]


@destination("mllp", MllpDestinationConfig,
             summary="sender keeping up to `connections` connections open (default 1, one message "
                     "in flight on each), ACK timeout, MSA-2 checked; `AA`/`CA` sent, `AE`/`CE` "
                     "retried, `AR`/`CR` failed; reads the ACKs the message's MSH-15/16 ask for "
                     "(CA then the application ACK, an error after a CA failed not resent; none "
                     "for NE/NE or an ACK message; `ack_grace`, default 1 s, for an ER/SU ACK "
                     "that may not come), a late ACK for an earlier message skipped")
class MllpDestination:
    """Up to ``connections`` connections to the receiver, one message in flight on each.

    A send takes an idle connection (the most recently used, so a quiet destination keeps using
    one), or opens one if fewer than ``connections`` are open; with all of them busy it waits its
    turn (first come, first served). A connection that fails, times out or is interrupted is
    closed, never reused: an ACK arriving late on it cannot be taken for the next message's.
    """

    def __init__(self, config: MllpDestinationConfig, context: ConnectorContext) -> None:
        self.config = config
        self._slots = asyncio.Semaphore(config.connections)
        self._idle: list[_Connection] = []  # open and free, most recently used last
        self._open: set[_Connection] = set()  # every open connection, in use or not

    async def send(self, out: Outbound) -> bytes:
        request, expected = self._asks(out)
        async with self._slots:
            conn: _Connection | None = None
            try:
                conn = self._reuse() or await self._checkout()
                conn.writer.write(frame(out.content))
                if conn.writer.transport.get_write_buffer_size():
                    await conn.writer.drain()  # else sent whole: a lost connection is seen
                    # by the ACK read (EOF: retried) as drain would have seen it
                found = await self._answers(conn, request, expected)
            except (OSError, TimeoutError, FramingError) as exc:
                if conn is not None:
                    await self._discard(conn)
                raise RetryableError(Reason.of(f"{self.describe()}: {type(exc).__name__}: ",
                                               value(exc))) from exc
            except BaseException:  # cancelled mid-exchange: its ACK may still come
                if conn is not None:
                    self._drop(conn)
                raise
            if found is None:
                await self._discard(conn)
                raise RetryableError(f"{self.describe()}: connection closed before the ACK")
            answers, unanswered = found
            if unanswered and expected:  # an ACK may still come for it
                conn.sent.append(expected)
            if conn in self._open:  # not closed by close() meanwhile
                self._idle.append(conn)
        if not answers:
            return b""  # none asked for (NE, an ACK message) or none came within ack_grace
        for answer, read in answers[:-1]:
            self._check(out, answer, read)
        if len(answers) > 1 and answers[0][1] is not None and answers[0][1][0] == "CA":
            return self._after_commit(out, *answers[-1])
        return self._check(out, *answers[-1])

    def _asks(self, out: Outbound) -> tuple[AckRequest | None, str | None]:
        """What the message asks its receiver for (None: an ACK message, which asks for
        nothing; an AckRequest() in original mode), and its MSH-10."""
        message = out.message if isinstance(out.message, Message) else None
        if message is None:
            try:
                message = Message.parse(out.content)
            except HL7ParseError:
                return AckRequest(), None  # the receiver answers AR; _check reads it
        return asked_for(message), message.control_id or None

    async def _answers(self, conn: _Connection, request: AckRequest | None,
                       expected: str | None) -> tuple[list[_Answer], bool] | None:
        """The ACKs the message asked for (HL7 v2 chapter 2: none, one, or a commit ACK then
        an application ACK), each with what ``parse_ack`` read in it (None: unreadable),
        skipping late ACKs for messages sent before on the connection whose ACK may still have
        been coming; and whether one may still come for this one (a receiver that answers NE
        or an ACK message anyway, an ER/SU ACK after ack_grace). None when the connection
        closed first."""
        answers: list[_Answer] = []
        codes: list[str] = []
        while True:
            may, certain = next_ack(request, codes) if request is not None else (False, False)
            if not may:
                return answers, not answers
            try:
                if certain:
                    answer = await conn.deadline.read(conn.reader, 64 * 1024 * 1024)
                else:
                    answer = await asyncio.wait_for(
                        read_frame(conn.reader, 64 * 1024 * 1024), self.config.ack_grace)
            except TimeoutError:
                if certain:
                    raise
                return answers, True  # silence within ack_grace: ER/SU say all is well
            if answer is None:
                return None
            read: tuple[str, str, str] | None
            try:
                read = parse_ack(answer)
            except HL7ParseError:
                read = None
            code, control_id = read[:2] if read is not None else ("", "")
            if control_id and control_id != expected and control_id in conn.sent:
                log.info("mllp late ACK skipped", destination=self.describe(),
                         acked=control_id, code=code)
                continue
            answers.append((answer, read))
            codes.append(code)

    def _after_commit(self, out: Outbound, answer: bytes,
                      read: tuple[str, str, str] | None) -> bytes:
        """The application ACK after a CA: the receiver has the message durably, so an error
        is final (resending would duplicate it), never retried."""
        try:
            return self._check(out, answer, read)
        except ApplicationError as exc:
            raise ApplicationReject(f"{exc} (after CA: not resent)", answer) from exc

    def _check(self, out: Outbound, response: bytes,
               read: tuple[str, str, str] | None = None) -> bytes:
        """The receiver's answer if it accepts the message; else the error it means. ``read``:
        what ``parse_ack`` found in it already (None: read it here)."""
        try:
            code, control_id, text = read if read is not None else parse_ack(response)
        except HL7ParseError as exc:
            raise RetryableError(Reason.of(f"{self.describe()}: unreadable ACK: ", value(exc)),
                                 response) from exc
        if self.config.check_control_id:
            expected = (out.message.control_id if isinstance(out.message, Message)
                        else message_control_id(out.content))
            if expected and control_id != expected:
                raise RetryableError(Reason.of(
                    f"{self.describe()}: ACK for ", value(repr(control_id)), ", expected ",
                    value(repr(expected))), response)
        if code in ("AA", "CA"):
            return response
        # the receiver's text may quote the message: a value for viewers
        answered = Reason.of(f"{self.describe()}: receiver answered {code}: ", value(text))
        if code in ("AR", "CR"):
            raise ApplicationReject(answered, response)
        raise ApplicationError(answered, response)

    def _reuse(self) -> _Connection | None:
        """The most recently used idle connection when it is usable (the usual case, without
        a coroutine); None leaves the rest to ``_checkout``."""
        if self._idle and self._idle[-1].usable():
            return self._idle.pop()
        return None

    async def _checkout(self) -> _Connection:
        """An idle usable connection, or a new one (the caller holds a slot)."""
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            await self._discard(conn)
        tls = self.config.tls
        async with asyncio.timeout(self.config.connect_timeout):
            reader, writer = await asyncio.open_connection(
                self.config.host, self.config.port, limit=2**26,
                ssl=tls.context() if tls else None,
                server_hostname=(tls.server_name or self.config.host) if tls else None)
        conn = _Connection(reader, writer, self.config.ack_timeout)
        self._open.add(conn)
        return conn

    def _drop(self, conn: _Connection) -> None:
        self._open.discard(conn)
        conn.close()

    async def _discard(self, conn: _Connection) -> None:
        self._drop(conn)
        with contextlib.suppress(Exception):
            await conn.writer.wait_closed()

    async def close(self) -> None:
        conns = list(self._open)
        self._open.clear()
        self._idle.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.writer.wait_closed()

    def describe(self) -> str:
        return f"mllp{'s' if self.config.tls else ''}://{self.config.host}:{self.config.port}"
