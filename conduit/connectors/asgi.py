"""One uvicorn server per HTTP-based listener (REST, FHIR, SOAP), independent of the dashboard.

The source's ``start()`` binds the socket itself (so a port in use is an ordinary ``OSError``,
not uvicorn's ``sys.exit``), hands it to uvicorn, and returns once uvicorn is serving;
``stop()`` asks it to finish and waits. Signals stay the engine's: uvicorn's own signal capture
is switched off, and so is its logging configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Generator
from typing import Any

import structlog
import uvicorn
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from conduit.connectors.listener_auth import ListenerAuthenticator, Rejection
from conduit.connectors.tls import ServerTls

log = structlog.get_logger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the engine handles SIGINT/SIGTERM and stops every source itself


class AsgiListener:
    """Serve an ASGI app on ``host:port`` (``port`` 0 = any free port), optionally over TLS."""

    def __init__(self, app: Any, host: str, port: int, tls: ServerTls | None = None,
                 *, max_connections: int | None = None, keep_alive: float = 30.0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.tls = tls
        self.max_connections = max_connections
        self.keep_alive = keep_alive
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", server_header=False,
            date_header=True, limit_concurrency=self.max_connections,
            timeout_keep_alive=int(self.keep_alive), timeout_graceful_shutdown=5,
            loop="none", http="h11")
        config.load()
        if self.tls is not None:
            config.ssl = self.tls.context()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
        # protocol is TCP, and without it Nagle + delayed ACK stall each response ~40 ms.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((self.host, self.port))
            sock.listen(config.backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
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
