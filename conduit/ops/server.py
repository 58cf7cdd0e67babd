"""The dashboard in the engine process: uvicorn on the engine's event loop, plus the periodic
tasks that belong to it (full-text indexing, retention, alerts, throughput sampling)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import uvicorn

if TYPE_CHECKING:
    from conduit.engine.engine import Engine

log = structlog.get_logger(__name__)

INDEX_INTERVAL = 1.0
INDEX_LIMIT = 20_000  # messages an indexing pass takes at most


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the engine owns SIGINT/SIGTERM."""

    def install_signal_handlers(self) -> None:  # older uvicorn
        return None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # newer uvicorn
        yield


def session_secret(engine: Engine) -> str:
    """The configured secret, else one generated once into the data directory (mode 0600)."""
    configured = engine.settings.dashboard.session_secret
    if configured:
        return configured
    path = Path(engine.settings.data_dir) / "dashboard.secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value


class Dashboard:
    """Serves the web app and runs the background tasks until stopped."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.settings = engine.settings.dashboard
        self.server: _Server | None = None
        self.port: int | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.sampler: Any = None
        self.alerter: Any = None
        self._serve: asyncio.Task[None] | None = None
        self._index_process: ProcessPoolExecutor | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.tls else "http"
        host = self.settings.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"{scheme}://{shown}:{self.port}/"

    async def start(self) -> None:
        from conduit.ops.app import create_app
        from conduit.ops.sampler import Sampler

        sampler = self.sampler = Sampler(self.engine)
        app = create_app(self.engine, sampler=sampler)
        config = uvicorn.Config(
            app, host=self.settings.host, port=self.settings.port, log_config=None,
            access_log=False, lifespan="off", loop="none", server_header=False,
            ssl_certfile=str(self.settings.tls_cert) if self.settings.tls else None,
            ssl_keyfile=str(self.settings.tls_key) if self.settings.tls else None)
        self.server = _Server(config)
        self._serve = asyncio.get_running_loop().create_task(self._run(), name="dashboard")
        while not self.server.started:
            if self._serve.done():
                from conduit.core.errors import StartupError

                raise StartupError(
                    f"dashboard: cannot listen on {self.settings.host}:{self.settings.port} "
                    f"(port in use?); change 'dashboard.port' in the settings file or set "
                    f"CONDUIT_DASHBOARD_PORT")
            await asyncio.sleep(0.01)
        sockets = [s for server in self.server.servers for s in server.sockets]
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.settings.port
        self._every(INDEX_INTERVAL, self._index)
        self._every(sampler.interval, sampler.sample)
        settings = self.engine.settings
        if settings.retention.rules and settings.retention.interval > 0:
            from conduit.store.retention import prune_once

            async def prune() -> None:
                await asyncio.to_thread(prune_once, self.engine.store.engine, settings.retention)

            self._every(settings.retention.interval, prune)
        if settings.alerts.rules:
            from conduit.ops.alerts import Alerter

            self.alerter = Alerter(self.engine, settings.alerts, sampler)
            self._every(settings.alerts.interval, self.alerter.evaluate)
        log.info("dashboard listening", url=self.url)

    async def _run(self) -> None:
        assert self.server is not None
        with contextlib.suppress(SystemExit):  # uvicorn exits when it cannot bind; start() says
            await self.server.serve()

    def _every(self, seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("background task failed", task=getattr(job, "__name__", "?"),
                                error=f"{type(exc).__name__}: {exc}")

        self.tasks.append(asyncio.get_running_loop().create_task(loop()))

    async def _index(self) -> None:
        """Full-text index what arrived since (in a process of its own: see ``fulltext``)."""
        from conduit.store.fulltext import Indexer, index_pending

        store = self.engine.store
        if not store.shared:
            indexer = getattr(self, "_indexer", None)
            if indexer is None:
                indexer = self._indexer = Indexer(store.engine)
            await asyncio.to_thread(indexer.run, INDEX_LIMIT)
            return
        if self._index_process is None:
            from conduit.store.process import follow_engine, helper_context

            self._index_process = ProcessPoolExecutor(
                1, mp_context=helper_context(), initializer=follow_engine,
                initargs=(os.getpid(),))
        await asyncio.get_running_loop().run_in_executor(
            self._index_process, index_pending, store.url, INDEX_LIMIT)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        if self._index_process is not None:  # a pass under way finishes its transaction
            await asyncio.to_thread(self._index_process.shutdown, True, cancel_futures=True)
            self._index_process = None
        if self.server is not None and self._serve is not None:
            self.server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._serve, 10)
