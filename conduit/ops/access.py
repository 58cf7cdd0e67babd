"""Who may do what: FastAPI dependencies for login, roles and CSRF, and the web app's state."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request

from conduit.engine.settings import DashboardSettings
from conduit.ops.audit import Audit
from conduit.ops.auth import LoginLimiter, Principal, Users

if TYPE_CHECKING:
    from conduit.engine.engine import Engine

SESSION_COOKIE = "conduit_session"
LOGIN_COOKIE = "conduit_login"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass
class WebState:
    """Everything the routes need, built once per app (no global state)."""

    engine: Engine
    settings: DashboardSettings
    users: Users
    audit: Audit
    limiter: LoginLimiter
    secret: str
    secure_cookies: bool
    extras: dict[str, Any] = field(default_factory=dict)


class NotAuthenticated(Exception):
    """No valid session or token: pages redirect to the login form, the API answers 401."""


def state(request: Request) -> WebState:
    return request.app.state.web


def remote(request: Request) -> str | None:
    return request.client.host if request.client else None


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.cookies.get(SESSION_COOKIE)


async def optional_principal(request: Request) -> Principal | None:
    token = _token(request)
    if not token:
        return None
    users = state(request).users
    return await asyncio.to_thread(users.lookup, token)


async def authenticated(
        request: Request,
        principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    """A logged-in principal; a cookie session must also show its CSRF token to change things."""
    if principal is None:
        raise NotAuthenticated()
    if request.method not in SAFE_METHODS and principal.kind == "session":
        given = request.headers.get("x-csrf-token")
        if given is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            given = value if isinstance(value, str) else None
        if not given or not principal.csrf or not hmac.compare_digest(given, principal.csrf):
            raise HTTPException(403, "CSRF token missing or wrong: reload the page")
    request.state.principal = principal
    return principal


def require(role: str) -> Any:
    """A dependency: the principal, if its role is at least ``role`` (else 403)."""

    async def check(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if not principal.can(role):
            raise HTTPException(403, f"this needs the {role} role")
        return principal

    return Depends(check)


Viewer = require("viewer")
Operator = require("operator")
Admin = require("admin")
