"""The dashboard in the engine process: the management app on a uvicorn listener (the same
wrapper the HTTP sources use), and the secret its login forms are signed with."""

from __future__ import annotations

import os
from typing import Any

import structlog

from conduit.connectors.asgi import AsgiListener
from conduit.connectors.tls import ServerTls
from conduit.core.errors import StartupError
from conduit.engine.engine import Engine
from conduit.ops.alerts import Alerter
from conduit.ops.metrics import Metrics
from conduit.ops.sampler import Sampler

log = structlog.get_logger(__name__)


class Dashboard:
    """The dashboard and management API, served on the engine's event loop (a service of the
    engine, started after its channels)."""

    name = "dashboard"

    def __init__(self, engine: Engine, metrics: Metrics, sampler: Sampler | None = None,
                 alerter: Alerter | None = None) -> None:
        self.engine = engine
        self.settings = engine.settings.dashboard
        self.metrics = metrics
        self.sampler = sampler
        self.alerter = alerter
        self.app: Any = None
        self.listener: AsgiListener | None = None

    @property
    def port(self) -> int | None:
        return self.listener.port if self.listener is not None else None

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.tls else "http"
        host = self.settings.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"{scheme}://{shown}:{self.port}/"

    async def start(self) -> None:
        from conduit.ops.app import create_app

        self.app = create_app(self.engine, self.metrics, sampler=self.sampler,
                              alerter=self.alerter)
        tls = (ServerTls.model_validate({"cert": str(self.settings.tls_cert),
                                         "key": str(self.settings.tls_key)})
               if self.settings.tls else None)
        listener = AsgiListener(self.app, self.settings.host, self.settings.port, tls)
        try:
            await listener.start()
        except OSError as exc:
            raise StartupError(
                f"dashboard: cannot listen on {self.settings.host}:{self.settings.port} "
                f"({os.strerror(exc.errno or 0).lower() if exc.errno else exc}); change "
                f"'dashboard.port' in the settings file or set CONDUIT_DASHBOARD_PORT") from exc
        self.listener = listener
        log.info("dashboard listening", url=self.url)

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None
