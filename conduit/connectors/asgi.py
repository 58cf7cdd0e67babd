"""One uvicorn server per HTTP-based listener (REST, FHIR, SOAP), independent of the dashboard.

The source's ``start()`` binds the socket itself (so a port in use is an ordinary ``OSError``,
not uvicorn's ``sys.exit``), hands it to uvicorn, and returns once uvicorn is serving;
``stop()`` asks it to finish and waits. Signals stay the engine's: uvicorn's own signal capture
is switched off, and so is its logging configuration.

Limits (:class:`HttpListenerConfig`), so that slow or greedy clients cannot starve the others:
uvicorn answers 503 beyond ``max_connections``; a remote address holds at most
``max_connections_per_client`` connections (one more is closed at once, logged by address);
a request's headers and body must arrive within ``request_timeout`` of its first byte however
slowly they trickle (else 408 and the connection closes: uvicorn has no such timeout);
incomplete headers are bounded by h11 (``H11_MAX_INCOMPLETE``) and idle keep-alive connections
close after ``keep_alive``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Generator
from typing import Any

import structlog
import uvicorn
from pydantic import Field
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from uvicorn.protocols.http.h11_impl import H11Protocol

from conduit.connectors.base import ListenerConfig
from conduit.connectors.listener_auth import ListenerAuthenticator, Rejection
from conduit.connectors.listening import ListeningSockets, Refusals, bind_listener
from conduit.connectors.tls import ServerTls
from conduit.core.duration import Duration

log = structlog.get_logger(__name__)

#: Largest incomplete HTTP event (request line and headers) h11 buffers before answering 431.
H11_MAX_INCOMPLETE = 64 * 1024
_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n"
              b"connection: close\r\n\r\n")


class HttpListenerConfig(ListenerConfig):
    """Limits every HTTP-based listener (REST, FHIR, SOAP) has (see the module docstring)."""

    max_connections: int = Field(
        1000, ge=1, description="Concurrent connections; beyond it requests are answered 503.")
    max_connections_per_client: int = Field(
        64, ge=1, examples=[16],
        description="Concurrent connections from one remote address; one more is closed at "
                    "once and logged with the address.")
    request_timeout: Duration = Field(
        30.0, examples=["10s"],
        description="A request's headers and body must arrive within this long of its first "
                    "byte, however slowly they trickle in; otherwise it is answered 408 and "
                    "the connection closed.")


class _Limited(H11Protocol):
    """uvicorn's h11 protocol with a per-address connection limit and a request timeout; the
    listener sets the class attributes on a subclass of its own."""

    per_client: int = 64
    request_timeout: float = 30.0
    counts: dict[str, int]
    channel: str | None = None
    refusals: Refusals

    _address: str | None = None
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else ""
        if self.counts.get(address, 0) >= self.per_client:
            self.refusals.note(address, "max_connections_per_client")
            transport.close()
            return
        self.counts[address] = self.counts.get(address, 0) + 1
        self._address = address

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self._reading():
            self._deadline = self.loop.call_later(self.request_timeout, self._too_slow)
        super().data_received(data)
        if self._deadline is not None and not self._reading():
            self._deadline.cancel()  # the whole request is in: the app takes its time
            self._deadline = None

    def _reading(self) -> bool:
        """Whether a request is being received: not all of its headers and body are in."""
        cycle = self.cycle
        return cycle is None or cycle.response_complete or cycle.more_body

    def _too_slow(self) -> None:
        self._deadline = None
        if not self._reading() or self.transport.is_closing():
            return
        log.info("http request not complete within request_timeout, closing",
                 channel=self.channel, address=self._address)
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(_TIMED_OUT)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._address is not None:
            left = self.counts.get(self._address, 1) - 1
            if left > 0:
                self.counts[self._address] = left
            else:
                self.counts.pop(self._address, None)
            self._address = None
        super().connection_lost(exc)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the engine handles SIGINT/SIGTERM and stops every source itself


class AsgiListener:
    """Serve an ASGI app on ``host:port`` (``port`` 0 = any free port), optionally over TLS."""

    def __init__(self, app: Any, host: str, port: int, tls: ServerTls | None = None,
                 *, max_connections: int | None = None, keep_alive: float = 30.0,
                 limits: HttpListenerConfig | None = None, channel: str | None = None,
                 listening: ListeningSockets | None = None) -> None:
        self.app = app
        self.listening = listening
        self.host = host
        self.port = port
        self.tls = tls
        self.max_connections = limits.max_connections if limits else max_connections
        self.keep_alive = keep_alive
        self._protocol = type("LimitedH11", (_Limited,), {
            "per_client": limits.max_connections_per_client if limits else 64,
            "request_timeout": limits.request_timeout if limits else 30.0,
            "counts": {}, "channel": channel, "refusals": Refusals(channel, "http")})
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", server_header=False,
            date_header=True, limit_concurrency=self.max_connections,
            timeout_keep_alive=max(1, int(self.keep_alive)), timeout_graceful_shutdown=5,
            loop="none", http=self._protocol, h11_max_incomplete_event_size=H11_MAX_INCOMPLETE,
            backlog=min(max(self.max_connections or 2048, 128), 4096))
        config.load()
        if self.tls is not None:
            config.ssl = self.tls.context()
        # a redeployed source takes its predecessor's socket over (see connectors.listening)
        sock = (self.listening.take(self.host, self.port, config.backlog)
                if self.listening is not None
                else bind_listener(self.host, self.port, config.backlog))
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise OSError(f"HTTP listener on {self.host}:{self.port} did not start")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            if self.listening is not None:
                self.listening.release(self._sock)
            self._server.should_exit = True
            with contextlib.suppress(Exception, SystemExit):
                await self._task
        self._server = self._task = None

    def url(self, path: str = "") -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{self.scheme}://{host}:{self.port}{path}"


class AsgiSource:
    """What every HTTP-based source shares: its listener's lifecycle and the ASGI entry point.

    Subclasses set ``_listener`` and ``_route`` (the path ``describe`` shows) in ``__init__`` and
    implement ``handle(request)``. Each request carries a correlation id, the sender's
    ``X-Request-Id`` or a new one, on every log line of its intake, echoed in the response,
    and handed to the engine in the message's ``meta`` (see :meth:`meta`): it is stored with the
    message and sent on by the HTTP-based destinations.

    With ``auth:`` in the source config (subclasses set ``_auth``), a request without valid
    credentials is answered 401 with a ``WWW-Authenticate`` challenge, in the body format of
    :meth:`unauthorized`, before ``handle`` sees it (except what :meth:`public` lets through).
    """

    _listener: AsgiListener
    _route: str
    _inbound: Any = None
    _auth: ListenerAuthenticator | None = None

    @property
    def port(self) -> int:
        return self._listener.port

    async def start(self, inbound: Any) -> None:
        self._inbound = inbound
        await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    def describe(self) -> str:
        return self._listener.url(self._route)

    async def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def unauthorized(self, request: Request, reason: str) -> Response:
        """The 401 answer's body, in the listener's own error format."""
        return Response(reason, 401, media_type="text/plain")

    def public(self, request: Request) -> bool:
        """Requests answered without authentication (FHIR's /metadata)."""
        return False

    async def _authorised(self, request: Request) -> Response | None:
        """None if the request may go on, else the 401 answer."""
        if self._auth is None or self.public(request):
            return None
        try:
            await self._auth.check(request.headers.get("authorization"))
        except Rejection as rejection:
            context = getattr(self, "context", None)
            log.info("listener refused a request", reason=rejection.reason,
                     channel=getattr(context, "channel", None),
                     remote=request.client.host if request.client else None)
            response = self.unauthorized(request, rejection.reason)
            response.status_code = 401
            response.headers["WWW-Authenticate"] = rejection.challenge
            return response
        return None

    @staticmethod
    def meta(request: Request) -> dict[str, Any]:
        """What the engine is told of a request besides its body: who sent it, correlation id."""
        remote = f"{request.client.host}:{request.client.port}" if request.client else None
        return {"remote": remote, "correlation_id": getattr(request.state, "request_id", None)}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        request_id = (request.headers.get("x-request-id") or uuid.uuid4().hex)[:100]
        request.state.request_id = request_id
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                response = await self._authorised(request) or await self.handle(request)
        except ClientDisconnect:
            return
        response.headers["X-Request-Id"] = request_id
        await response(scope, receive, send)
