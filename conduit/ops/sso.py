"""Single sign-on: OpenID Connect login (authorization code + PKCE) through authlib, with the
Conduit role taken from one claim of the provider's token.

The flow's state (state, nonce, PKCE verifier, where to go after) lives in a short-lived cookie
on ``/login/oidc``, encrypted with the dashboard secret (JWE, A256GCM): it binds the flow to the
browser that started it, and any engine process behind a load balancer can finish it.

The user is found again by ``<issuer>#<sub>`` (never by name alone, which the provider may
reuse), made on their first login, and takes the role the claims give at each login. A user
whose claims map to no role (and no ``default_role``) is refused with a page that says so; every
login, refusal and failure is audited like a local one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import structlog
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from conduit.engine.settings import OidcSettings
from conduit.ops.access import remote, state
from conduit.ops.auth import RANK, UserError
from conduit.ops.login import fresh_login_page, note_login, open_session

log = structlog.get_logger("conduit.web.sso")
router = APIRouter(include_in_schema=False)
FLOW_COOKIE = "conduit_oidc"
FLOW_SECONDS = 600
CALLBACK = "/login/oidc/callback"


def map_role(claims: Mapping[str, Any], settings: OidcSettings) -> str | None:
    """The highest role any value of ``role_claim`` maps to, else ``default_role`` (None:
    refuse). ``role_claim`` may be a dotted path into nested claims (``realm_access.roles``)."""
    value: Any = claims
    for part in settings.role_claim.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    values = value if isinstance(value, list) else [value]
    roles = [settings.role_map[v] for v in values if isinstance(v, str) and v in settings.role_map]
    if roles:
        return max(roles, key=RANK.__getitem__)
    return settings.default_role


def user_name(claims: Mapping[str, Any], settings: OidcSettings) -> str:
    for key in (settings.username_claim, "email", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value:
            return value[:100]
    return ""


class _Flow:
    """What authlib's Starlette client reads of a request, with the flow's session from (and
    for) the sealed cookie instead of a session middleware."""

    def __init__(self, request: Request, session: dict[str, Any]) -> None:
        self.session = session
        self.query_params = request.query_params
        self.scope = request.scope


def _key(secret: str) -> OctKey:
    return OctKey.import_key(hashlib.sha256(b"conduit oidc flow\0" + secret.encode()).digest())


def _seal(secret: str, data: dict[str, Any]) -> str:
    return jwe.encrypt_compact({"alg": "dir", "enc": "A256GCM"},
                               json.dumps(data).encode(), _key(secret))


def _unseal(secret: str, sealed: str | None) -> dict[str, Any] | None:
    if not sealed:
        return None
    try:
        data = json.loads(jwe.decrypt_compact(sealed, _key(secret)).plaintext or b"")
    except (JoseError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _client(request: Request) -> tuple[StarletteOAuth2App, OidcSettings]:
    web = state(request)
    settings = web.settings.oidc
    if settings is None:
        raise LookupError("single sign-on is not configured")
    client = web.extras.get("oidc")
    if client is None:
        scopes = list(dict.fromkeys(["openid", *settings.scopes]))
        oauth = OAuth()
        client = oauth.register(
            "conduit", client_id=settings.client_id, client_secret=settings.client_secret,
            server_metadata_url=settings.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": " ".join(scopes), "code_challenge_method": "S256"})
        web.extras["oidc"] = client
    return client, settings


def _redirect_uri(request: Request, settings: OidcSettings) -> str:
    return settings.redirect_uri or str(request.base_url).rstrip("/") + CALLBACK


@router.get("/login/oidc")
async def oidc_start(request: Request, next: str | None = None) -> Response:
    """Send the browser to the provider (state, nonce, PKCE S256)."""
    web = state(request)
    try:
        client, settings = _client(request)
        metadata = await client.load_server_metadata()
        if str(metadata.get("issuer", "")).rstrip("/") != settings.issuer.rstrip("/"):
            raise OAuthError(description=f"the discovery document names issuer "
                                         f"{metadata.get('issuer')!r}, not {settings.issuer!r}")
        session: dict[str, Any] = {"next": next or "/"}
        answer = await client.authorize_redirect(_Flow(request, session),
                                                 _redirect_uri(request, settings))
    except LookupError:
        return fresh_login_page(request, next=next, status=404,
                                error="Single sign-on is not configured.")
    except Exception as exc:  # the provider unreachable or misconfigured: say so, log why
        log.warning("oidc provider unavailable", error=str(exc))
        return fresh_login_page(request, next=next, status=502,
                                error="The sign-in provider cannot be reached; try again "
                                      "later or ask an administrator.")
    answer.set_cookie(FLOW_COOKIE, _seal(web.secret, session), httponly=True, samesite="lax",
                      secure=web.secure_cookies, path="/login/oidc", max_age=FLOW_SECONDS)
    return answer


@router.get(CALLBACK, name="oidc_callback")
async def oidc_callback(request: Request) -> Response:
    """The provider's answer: the code exchanged (with the PKCE verifier) for tokens, the ID
    token checked (signature, issuer, audience, expiry, nonce), the role mapped, a session."""
    web = state(request)
    where = remote(request) or "?"
    session = _unseal(web.secret, request.cookies.get(FLOW_COOKIE))
    if session is None:
        return await _refused(request, None, 400, "The sign-in expired or was started elsewhere: "
                                            "please sign in again.", "oidc: no flow cookie")
    target = str(session.get("next") or "/")
    try:
        client, settings = _client(request)
        token = await client.authorize_access_token(_Flow(request, session))
        claims: dict[str, Any] = dict(token.get("userinfo") or {})
        if not claims.get("sub"):
            raise OAuthError(description="no ID token (is 'openid' among the scopes?)")
        if _claim_missing(claims, settings.role_claim) \
                or not claims.get(settings.username_claim):
            info = await client.userinfo(token=token)
            if info.get("sub") != claims["sub"]:
                raise OAuthError(description="userinfo is about another subject")
            claims = {**info, **claims}
    except LookupError:
        return await _refused(request, None, 404, "Single sign-on is not configured.", None)
    except (OAuthError, JoseError) as exc:
        await asyncio.to_thread(web.audit.record, None, "login-failed", (None,), where,
                                f"oidc: {exc}"[:500])
        note_login(web, "failed", f"single sign-on failed: {type(exc).__name__}", user=None,
                   where=where, level="warning")
        return await _refused(request, None, 401, "The sign-in did not succeed: "
                                            f"{getattr(exc, 'description', None) or exc}.", None)
    except Exception as exc:  # the provider unreachable mid-flow: say so, log why, no session
        log.warning("oidc provider unavailable", error=str(exc))
        await asyncio.to_thread(web.audit.record, None, "login-failed", (None,), where,
                                f"oidc: provider unavailable: {type(exc).__name__}")
        note_login(web, "failed", "single sign-on provider unreachable", user=None,
                   where=where, level="error")
        return await _refused(request, None, 502, "The sign-in provider cannot be reached; "
                                                  "try again later.", None)
    name = user_name(claims, settings)
    role = map_role(claims, settings)
    if role is None:
        await asyncio.to_thread(web.audit.record, name, "login-refused", (None,), where,
                                f"oidc: no role for claim {settings.role_claim}")
        note_login(web, "refused", f"single sign-on: no role for claim {settings.role_claim}",
                   user=name, where=where, level="warning")
        return await _refused(request, target, 403,
                        f"You signed in at {settings.name} as {name}, but nothing there gives "
                        f"you a role in Conduit (claim '{settings.role_claim}'). Ask an "
                        f"administrator to grant you access.", None)
    try:
        name = await asyncio.to_thread(web.users.sso_login,
                                       f"{settings.issuer}#{claims['sub']}", name, role)
    except UserError as exc:
        await asyncio.to_thread(web.audit.record, name, "login-refused", (None,), where,
                                f"oidc: {exc}"[:500])
        note_login(web, "refused", f"single sign-on refused here: {exc}", user=name,
                   where=where, level="warning")
        return await _refused(request, target, 403, f"Signed in at {settings.name}, but refused "
                                              f"here: {exc}.", None)
    response = await open_session(web, name, where, target, f"oidc {settings.issuer}")
    response.delete_cookie(FLOW_COOKIE, path="/login/oidc")
    return response


def _claim_missing(claims: Mapping[str, Any], path: str) -> bool:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return True
        value = value[part]
    return False


async def _refused(request: Request, target: str | None, status: int, error: str,
                   audit_detail: str | None) -> HTMLResponse:
    if audit_detail:
        await asyncio.to_thread(state(request).audit.record, None, "login-failed", (None,),
                                remote(request) or "?", audit_detail)
        note_login(state(request), "failed", f"single sign-on: {audit_detail}", user=None,
                   where=remote(request), level="warning")
    response = fresh_login_page(request, next=target, status=status, error=error)
    response.delete_cookie(FLOW_COOKIE, path="/login/oidc")
    return response

