"""Logging in and out of the dashboard: the local form (user name + password, then a TOTP code
when the user has a second factor or their role needs one) and, beside it, single sign-on
(:mod:`conduit.ops.sso`). Every login, refusal and failure is audited.

A password that is right for a user with TOTP opens no session: it gives a pending token (an
``mfa`` row, a few minutes, in an HttpOnly cookie on ``/login``) that only ``/login/mfa`` reads.
A user whose role is in ``dashboard.mfa_required_roles`` and has no TOTP yet is refused with a
page saying how to get one: an administrator enrols them on the Conduit host (``conduit users mfa
NAME``) and hands over the secret. There is no enrolment by password alone, which would let
whoever has the password choose the second factor.

Logins, failures (why, never the password), refusals and logouts also go to the event log
(``login.*``), which every dashboard user sees; the audit is the admins'.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from conduit.ops.access import LOGIN_COOKIE, SESSION_COOKIE, Viewer, WebState, remote, state
from conduit.ops.auth import MFA_MINUTES, Principal
from conduit.ops.dashboard import page, safe_next

router = APIRouter(include_in_schema=False)
MFA_COOKIE = "conduit_mfa"


def note_login(web: WebState, what: str, text: str, *, user: str | None, where: str | None,
               level: str = "info") -> None:
    """A ``login.<what>`` event: ``text`` says how or why (never a password), from where."""
    web.engine.events.record(f"login.{what}", f"{text} (from {where or '?'})",
                             user=user[:100] if user else None, level=level)


def login_page(request: Request, *, next: str | None, login_csrf: str, status: int = 200,
               error: str | None = None, template: str = "login.html") -> HTMLResponse:
    web = state(request)
    oidc = web.settings.oidc
    return page(request, template, None, status=status, next=safe_next(next),
                login_csrf=login_csrf, error=error, local_login=web.settings.local_login,
                sso_name=oidc.name if oidc else None)


async def open_session(web: WebState, name: str, where: str, target: str,
                       how: str) -> Response:
    """Log ``name`` in: a session cookie, the audit row, and a redirect to ``target``."""
    token, _csrf = await asyncio.to_thread(web.users.open_session, name, where,
                                           web.settings.session_hours)
    await asyncio.to_thread(web.audit.record, name, "login", (None,), where, how)
    note_login(web, "succeeded", f"logged in by {how}", user=name, where=where)
    response = RedirectResponse(safe_next(target), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=web.secure_cookies,
                        max_age=int(web.settings.session_hours * 3600))
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    response.delete_cookie(MFA_COOKIE, path="/login")
    return response


def fresh_login_page(request: Request, *, next: str | None, status: int = 200,
                     error: str | None = None) -> HTMLResponse:
    """The login page with its form's CSRF cookie (kept if the browser has one)."""
    web = state(request)
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = login_page(request, next=next, login_csrf=token, status=status, error=error)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=web.secure_cookies, path="/login")
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None,
                     error: str | None = None) -> HTMLResponse:
    return fresh_login_page(request, next=next, error=error)


def _form_cookie(request: Request, csrf_token: str) -> str | None:
    """The login form's cookie when the form posted it back (login CSRF), else None."""
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    return cookie if cookie and hmac.compare_digest(cookie, csrf_token) else None


def _too_many(request: Request, keys: tuple[str, ...], next: str,
              cookie: str) -> Response | None:
    wait = state(request).limiter.retry_after(*keys)
    if wait <= 0:
        return None
    response = login_page(request, status=429, next=next, login_csrf=cookie,
                          error=f"Too many failed logins: try again in {int(wait) + 1} s.")
    response.headers["Retry-After"] = str(int(wait) + 1)
    return response


@router.post("/login")
async def login(request: Request, username: Annotated[str, Form()],
                password: Annotated[str, Form()], csrf_token: Annotated[str, Form()] = "",
                next: Annotated[str, Form()] = "/") -> Response:
    web = state(request)
    if not web.settings.local_login:
        raise HTTPException(403, "local logins are switched off: use single sign-on")
    where = remote(request) or "?"
    cookie = _form_cookie(request, csrf_token)
    if cookie is None:
        return login_page(request, status=403, next=next,
                          login_csrf=request.cookies.get(LOGIN_COOKIE)
                          or secrets.token_urlsafe(24),
                          error="The login form expired: please try again.")
    keys = (f"ip:{where}", f"user:{username.lower()}")
    if (refused := _too_many(request, keys, next, cookie)) is not None:
        return refused
    found = await asyncio.to_thread(web.users.verify, username, password)
    if found is None:
        web.limiter.failed(*keys)
        await asyncio.to_thread(web.audit.record, username[:100], "login-failed", (None,),
                                where)
        # a name that is no user's is not shown: it may be a password typed one field early
        known = await asyncio.to_thread(web.users.exists, username)
        note_login(web, "failed", "wrong password or user disabled" if known
                   else "unknown user name", user=username if known else None, where=where,
                   level="warning")
        return login_page(request, status=401, next=next, login_csrf=cookie,
                          error="Wrong user name or password.")
    web.limiter.succeeded(*keys)
    if found.totp:
        pending = await asyncio.to_thread(web.users.open_pending, found.name, where)
        response = login_page(request, next=next, login_csrf=cookie, template="login_mfa.html")
        response.set_cookie(MFA_COOKIE, pending, httponly=True, samesite="strict",
                            secure=web.secure_cookies, path="/login",
                            max_age=MFA_MINUTES * 60)
        return response
    if found.role in web.settings.mfa_required_roles:
        await asyncio.to_thread(web.audit.record, found.name, "login-refused", (None,), where,
                                "mfa enrolment needed")
        note_login(web, "refused", f"the {found.role} role needs a second factor and the user "
                                   "has none", user=found.name, where=where, level="warning")
        return login_page(
            request, status=403, next=next, login_csrf=cookie,
            error=f"The {found.role} role needs a second factor (an authenticator app code) "
                  f"and you have none yet. Ask an administrator to enrol you on the Conduit "
                  f"host with `conduit users mfa {found.name}` and to give you the secret; "
                  f"then log in again.")
    return await open_session(web, found.name, where, next, "password")


@router.post("/login/mfa")
async def login_mfa(request: Request, code: Annotated[str, Form()],
                    csrf_token: Annotated[str, Form()] = "",
                    next: Annotated[str, Form()] = "/") -> Response:
    """The second step: the TOTP code, with the pending token the password step gave."""
    web = state(request)
    where = remote(request) or "?"
    cookie = _form_cookie(request, csrf_token)
    pending = request.cookies.get(MFA_COOKIE)
    name = await asyncio.to_thread(web.users.pending, pending) if pending else None
    if cookie is None or name is None:
        return login_page(request, status=401, next=next,
                          login_csrf=cookie or secrets.token_urlsafe(24),
                          error="The login expired: enter your user name and password again.")
    keys = (f"ip:{where}", f"user:{name.lower()}")
    if (refused := _too_many(request, keys, next, cookie)) is not None:
        return refused
    if not await asyncio.to_thread(web.users.check_totp, name, code):
        web.limiter.failed(*keys)
        await asyncio.to_thread(web.audit.record, name, "login-failed", (None,), where, "totp")
        note_login(web, "failed", "password right, second-factor code wrong or used before",
                   user=name, where=where, level="warning")
        return login_page(request, status=401, next=next, login_csrf=cookie,
                          template="login_mfa.html",
                          error="Wrong or already used code: enter the current one.")
    web.limiter.succeeded(*keys)
    assert pending is not None  # name was found from it
    await asyncio.to_thread(web.users.close_pending, pending)
    return await open_session(web, name, where, next, "password+totp")


@router.post("/logout")
async def logout(request: Request, principal: Principal = Viewer) -> Response:
    web = state(request)
    if principal.token_hash:
        await asyncio.to_thread(web.users.close, principal.token_hash)
    await asyncio.to_thread(web.audit.record, principal.name, "logout", (None,), remote(request))
    note_login(web, "logout", "logged out", user=principal.name, where=remote(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
