"""OpenID Connect single sign-on against a real provider: npm oidc-provider (OpenID Certified),
started by the test on a port of its choosing, driven through the authorization code + PKCE
flow with httpx as a browser would (redirects followed, the provider's login and consent forms
posted). Skipped when node or tests/peers/node/node_modules are missing (.ci/run installs them).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from conduit.engine.settings import OidcSettings
from conduit.ops.sso import map_role
from tests.ops.helpers import base_url, dashboard, run
from tests.support import free_port

PEER = Path(__file__).parents[1] / "peers" / "node"
CLIENT_ID, CLIENT_SECRET = "conduit-dashboard", "test-client-secret-0123456789"
ACCOUNTS = {"nurse.admin": {"roles": ["ward-staff", "conduit-admins"]},
            "ward.clerk": {"roles": ["ward-staff"]},
            "visitor": {"roles": ["cafeteria"]}}
ROLE_MAP = {"conduit-admins": "admin", "conduit-operators": "operator", "ward-staff": "viewer"}

needs_provider = pytest.mark.skipif(
    shutil.which("node") is None or not (PEER / "node_modules" / "oidc-provider").exists(),
    reason="node or oidc-provider missing: run `npm install` in tests/peers/node (.ci/run does)")


@contextlib.contextmanager
def provider(port: int, redirect_uri: str) -> Iterator[str]:
    """The provider on ``port``, its issuer URL yielded once it listens."""
    process = subprocess.Popen(
        ["node", str(PEER / "oidc.js"), str(port), redirect_uri, CLIENT_ID, CLIENT_SECRET,
         json.dumps(ACCOUNTS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening "), (line, process.stderr.read() if process.stderr
                                               else "")
        yield line.split()[1]
    finally:
        process.kill()
        process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def _form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    """The page's (first) form: its absolute action and its hidden fields."""
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    assert action, page.text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return urljoin(str(page.url), action.group(1)), hidden


async def sign_in(client: httpx.AsyncClient, login: str) -> httpx.Response:
    """Click 'Sign in with …', log in at the provider, consent; the page Conduit ends on."""
    page = await client.get("/login/oidc?next=/api/me", follow_redirects=True)
    authorize = httpx.URL(page.history[0].headers["location"])
    query = parse_qs(authorize.query.decode())
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["response_type"] == ["code"] and "nonce" in query and "state" in query
    for _ in range(4):  # the provider's login form, then its consent form
        if urlsplit(str(page.url)).netloc == urlsplit(str(client.base_url)).netloc:
            return page
        action, fields = _form(page)
        if fields.get("prompt") == "login":
            fields.update(login=login, password="any password")
        page = await client.post(action, data=fields, follow_redirects=True)
    raise AssertionError(f"never came back to Conduit: {page.url} {page.text[:500]}")


def _settings(issuer: str) -> dict[str, Any]:
    return {"issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "name": "Hospital IdP", "scopes": ["openid", "profile", "conduit"],
            "role_claim": "conduit_roles", "role_map": ROLE_MAP}


@needs_provider
def test_sign_in_with_a_real_openid_provider_maps_the_role(tmp_path: Path) -> None:
    async def scenario() -> None:
        port = free_port()
        issuer = f"http://127.0.0.1:{port}"
        async with dashboard(tmp_path, oidc=_settings(issuer)) as engine:
            url = base_url(engine)
            with provider(port, url + "/login/oidc/callback") as started:
                assert started == issuer
                async with httpx.AsyncClient(base_url=url) as client:
                    login = await client.get("/login")
                    assert "Sign in with Hospital IdP" in login.text
                    assert 'name="password"' in login.text  # local logins stay
                    me = await sign_in(client, "nurse.admin")
                    assert me.status_code == 200, me.text
                    assert me.json()["name"] == "nurse.admin"
                    assert me.json()["role"] == "admin"  # highest of its mapped groups
                    assert (await client.get("/api/users")).status_code == 200
                async with httpx.AsyncClient(base_url=url) as clerk:
                    me = await sign_in(clerk, "ward.clerk")
                    assert me.json()["role"] == "viewer"
                    assert (await clerk.get("/api/users")).status_code == 403
                async with httpx.AsyncClient(base_url=url) as visitor:
                    refused = await sign_in(visitor, "visitor")
                    assert refused.status_code == 403
                    assert "nothing there gives you a role in Conduit" in refused.text
                    assert (await visitor.get("/api/me")).status_code == 401
            web = engine.service("dashboard").app.state.web
            rows = [(r["username"], r["action"], r["detail"])
                    for r in web.audit.list()][::-1]
            assert rows == [("nurse.admin", "login", f"oidc {issuer}"),
                            ("ward.clerk", "login", f"oidc {issuer}"),
                            ("visitor", "login-refused", "oidc: no role for claim conduit_roles")]
            # the event log (issue 19) has them too, for every role to see
            from conduit.store import eventlog

            await engine.events.settled()
            events = [(e.user, e.kind, e.text) for e in eventlog.listed(
                engine.store.engine, kind="login")][::-1]
            assert events == [
                ("nurse.admin", "login.succeeded", f"logged in by oidc {issuer} (from 127.0.0.1)"),
                ("ward.clerk", "login.succeeded", f"logged in by oidc {issuer} (from 127.0.0.1)"),
                ("visitor", "login.refused", "single sign-on: no role for claim conduit_roles "
                                             "(from 127.0.0.1)")]
            listed = {u["name"]: u for u in web.users.list()}
            assert listed["nurse.admin"]["sso"] and listed["nurse.admin"]["role"] == "admin"
            # an SSO user has no password that works on the local form
            assert web.users.verify("nurse.admin", "!sso") is None

    run(scenario)


@needs_provider
def test_a_forged_or_replayed_callback_opens_no_session(tmp_path: Path) -> None:
    async def scenario() -> None:
        port = free_port()
        async with dashboard(tmp_path, oidc=_settings(f"http://127.0.0.1:{port}")) as engine:
            url = base_url(engine)
            with provider(port, url + "/login/oidc/callback"):
                async with httpx.AsyncClient(base_url=url) as client:
                    # a callback without the flow this browser started
                    forged = await client.get("/login/oidc/callback?code=x&state=y")
                    assert forged.status_code == 400
                    # a real code, replayed by a browser that did not start the flow
                    me = await sign_in(client, "nurse.admin")
                    assert me.status_code == 200
                    callback = next(r for r in me.history
                                    if r.url.path == "/login/oidc/callback")
                async with httpx.AsyncClient(base_url=url) as other:
                    replay = await other.get(str(callback.url))
                    assert replay.status_code == 400
                    assert (await other.get("/api/me")).status_code == 401

    run(scenario)


def test_role_mapping_takes_the_highest_mapped_value_or_the_default() -> None:
    settings = OidcSettings(issuer="https://idp", client_id="c", role_claim="realm.roles",
                            role_map={"ops": "operator", "staff": "viewer"})
    assert map_role({"realm": {"roles": ["staff", "ops", "x"]}}, settings) == "operator"
    assert map_role({"realm": {"roles": "staff"}}, settings) == "viewer"
    assert map_role({"realm": {"roles": ["x"]}}, settings) is None
    assert map_role({}, settings) is None
    fallback = settings.model_copy(update={"default_role": "viewer"})
    assert map_role({"realm": {"roles": ["x"]}}, fallback) == "viewer"


def test_no_provider_configured_means_no_sso_button(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            assert "Sign in with" not in (await client.get("/login")).text
            assert (await client.get("/login/oidc")).status_code == 404

    run(scenario)




def test_the_client_secret_can_come_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conduit.engine.settings import load_settings

    path = tmp_path / "settings.yaml"
    path.write_text("dashboard:\n  oidc: {issuer: 'https://idp.example', client_id: conduit,\n"
                    "         role_map: {staff: viewer}}\n")
    monkeypatch.setenv("CONDUIT_DASHBOARD_OIDC_CLIENT_SECRET", "from-the-environment")
    oidc = load_settings(path).dashboard.oidc
    assert oidc is not None and oidc.client_secret == "from-the-environment"
    assert oidc.role_map == {"staff": "viewer"} and oidc.default_role is None


def test_an_unreachable_provider_gives_a_clear_page(tmp_path: Path) -> None:
    async def scenario() -> None:
        issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        async with dashboard(tmp_path, oidc=_settings(issuer)) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            answer = await client.get("/login/oidc")
            assert answer.status_code == 502
            assert "cannot be reached" in answer.text and 'name="password"' in answer.text
            assert (await client.get("/api/me")).status_code == 401

    run(scenario)
