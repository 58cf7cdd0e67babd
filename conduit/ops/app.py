"""The web app: management API under ``/api`` (OpenAPI at ``/api/docs``), dashboard pages,
``/metrics``, ``/healthz`` and ``/readyz``.

Nothing is reachable without login except ``/healthz``, ``/readyz``, the login form, its static
files and ``/metrics`` from this machine (``dashboard.metrics_loopback``, on by default) or from
anywhere when ``dashboard.metrics_public`` is set; elsewhere ``/metrics`` takes a bearer token.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from conduit.ops.access import (
    NotAuthenticated,
    Viewer,
    WebState,
    optional_principal,
)
from conduit.ops.audit import Audit
from conduit.ops.auth import LoginLimiter, Principal, Users
from conduit.ops.health import readiness
from conduit.ops.secret import session_secret

if TYPE_CHECKING:
    from conduit.engine.engine import Engine
    from conduit.ops.alerts import Alerter
    from conduit.ops.metrics import Metrics
    from conduit.ops.sampler import Sampler

log = structlog.get_logger("conduit.web")
HERE = Path(__file__).parent
REQUEST_ID = "x-request-id"
SWAGGER_UI = "/static/swagger-ui"


class RequestContext(BaseHTTPMiddleware):
    """Correlation id (``X-Request-Id`` taken or made, echoed back and bound to every log line of
    the request), one access log line, and security headers."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        request_id = request.headers.get(REQUEST_ID) or uuid.uuid4().hex
        request_id = request_id[:100]
        request.state.request_id = request_id
        began = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            response = await call_next(request)
            principal = getattr(request.state, "principal", None)
            log.info("http request", method=request.method, path=request.url.path,
                     status=response.status_code, user=principal.name if principal else None,
                     ms=round((time.perf_counter() - began) * 1000, 1))
        response.headers[REQUEST_ID] = request_id
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/api/docs"):
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                "script-src 'self'; frame-ancestors 'none'; form-action 'self'")
        if request.url.scheme == "https":
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.url.path.startswith(("/api/messages", "/messages")):
            response.headers["Cache-Control"] = "no-store"
        return response


def _loopback(request: Request) -> bool:
    """Whether the client is on this machine (the TCP peer, not a forwarded header)."""
    import ipaddress

    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(engine: Engine, metrics: Metrics, sampler: Sampler | None = None,
               alerter: Alerter | None = None) -> FastAPI:

    settings = engine.settings.dashboard
    app = FastAPI(title="Conduit management API", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None,
                  description="Channels, messages, dead letters, breakers, statistics and "
                              "users of a Conduit engine. Log in through the dashboard (cookie "
                              "+ X-CSRF-Token header) or send `Authorization: Bearer <token>` "
                              "(`conduit users token NAME`).")
    secure = settings.secure_cookies if settings.secure_cookies is not None else settings.tls
    app.state.web = WebState(
        engine=engine, settings=settings, users=Users(engine.store.engine),
        audit=Audit(engine.store.engine),
        limiter=LoginLimiter(settings.login_attempts, settings.login_window),
        secret=session_secret(engine), secure_cookies=secure,
        extras={"sampler": sampler, "alerter": alerter, "started": time.time()})
    app.add_middleware(RequestContext)

    @app.exception_handler(NotAuthenticated)
    async def _login_needed(request: Request, exc: NotAuthenticated) -> Response:
        if request.url.path.startswith("/api/") or request.url.path == "/metrics" \
                or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": "log in first (session cookie or bearer token)"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        from urllib.parse import quote

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if not request.url.path.startswith("/api/") and \
                "text/html" in request.headers.get("accept", ""):
            from conduit.ops.dashboard import error_page

            return error_page(request, exc.status_code, str(exc.detail))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [{"loc": e.get("loc"), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        """Readiness: the store and the bus are reachable."""
        checks = await readiness(engine)
        ready = all(checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(
            request: Request,
            principal: Annotated[Principal | None, Depends(optional_principal)]) -> Response:
        if not settings.metrics_public and principal is None \
                and not (settings.metrics_loopback and _loopback(request)):
            raise NotAuthenticated()
        request.state.principal = principal  # the access log names the scraper's user
        body = await asyncio.to_thread(generate_latest, metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/openapi.json", include_in_schema=False)
    async def openapi(_: Principal = Viewer) -> dict[str, Any]:
        return app.openapi()

    @app.get("/api/docs", include_in_schema=False)
    async def docs(_: Principal = Viewer) -> HTMLResponse:
        # Swagger UI's files ship with Conduit (static/swagger-ui): no CDN, which a hospital
        # network (or an air-gapped host) cannot reach anyway.
        return get_swagger_ui_html(openapi_url="/api/openapi.json",
                                   title="Conduit management API",
                                   swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png")

    from conduit.ops import (
        account,
        api_admin,
        api_channels,
        api_charts,
        api_messages,
        api_ops,
        api_preview,
        api_yaml,
        bulk,
        dashboard,
        editor,
        events_page,
        login,
        preview_page,
        sso,
    )

    for module in (api_channels, api_messages, api_ops, api_admin, api_preview,
                   api_charts, api_yaml):
        app.include_router(module.router, prefix="/api")
    app.include_router(login.router)
    app.include_router(sso.router)
    app.include_router(account.router)
    app.include_router(events_page.router)  # /events and /api/events
    app.include_router(preview_page.router)  # before the dashboard's /channels/{name}/{action}
    app.include_router(editor.router)  # likewise
    app.include_router(bulk.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app
