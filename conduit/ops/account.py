"""A user's own account page: turning on their TOTP second factor while logged in.

The secret is shown with its otpauth URI and only stored once the user gives the password again
and a code from their app, so a session left open cannot be used to pick the second factor
without the password, and nobody is enrolled with a secret their app does not have. Turning it
off or replacing it is an administrator's job (``conduit users mfa NAME --reset``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from conduit.ops import totp
from conduit.ops.access import Viewer, remote, state
from conduit.ops.auth import Principal, UserError
from conduit.ops.dashboard import page

router = APIRouter(include_in_schema=False)


async def _status(request: Request, principal: Principal) -> dict[str, bool]:
    web = state(request)
    listed = await asyncio.to_thread(web.users.list)
    me = next((u for u in listed if u["name"] == principal.name), {})
    return {"totp": bool(me.get("totp")), "sso": bool(me.get("sso"))}


def _offer(request: Request, principal: Principal, *, status: int = 200,
           error: str | None = None, secret: str | None = None) -> HTMLResponse:
    secret = secret or totp.new_secret()
    return page(request, "account_mfa.html", principal, status=status, error=error,
                enrolled=False, sso=False, secret=secret,
                uri=totp.provisioning_uri(secret, principal.name))


@router.get("/account/mfa")
async def account_mfa(request: Request, principal: Principal = Viewer) -> HTMLResponse:
    found = await _status(request, principal)
    if found["totp"] or found["sso"]:
        return page(request, "account_mfa.html", principal, enrolled=found["totp"],
                    sso=found["sso"], error=None)
    return _offer(request, principal)


@router.post("/account/mfa")
async def account_mfa_enrol(request: Request, secret: Annotated[str, Form()],
                            password: Annotated[str, Form()], code: Annotated[str, Form()],
                            principal: Principal = Viewer) -> Response:
    web = state(request)
    where = remote(request) or "?"
    keys = (f"user:{principal.name.lower()}",)
    if web.limiter.retry_after(*keys) > 0:
        return _offer(request, principal, status=429, secret=secret,
                      error="Too many failed attempts: try again later.")
    if await asyncio.to_thread(web.users.verify, principal.name, password) is None:
        web.limiter.failed(*keys)
        await asyncio.to_thread(web.audit.record, principal.name, "mfa-enrol-failed", (None,),
                                where, "password")
        return _offer(request, principal, status=400, secret=secret,
                      error="Wrong password.")
    step = totp.matching_step(secret, code, None)
    if step is None:
        return _offer(request, principal, status=400, secret=secret,
                      error="That code does not match: check the app's time and try the "
                            "current code.")
    try:
        await asyncio.to_thread(web.users.set_totp, principal.name, secret, step)
    except UserError as exc:
        return page(request, "account_mfa.html", principal, status=409, error=str(exc),
                    enrolled=True, sso=False)
    await asyncio.to_thread(web.audit.record, principal.name, "mfa-enrol", (None,), where)
    return RedirectResponse("/account/mfa", status_code=303)
