"""TOTP second factor for local users: the code after the password, enforced per role, over real
HTTP; API tokens unaffected; `conduit users mfa` enrols."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pyotp
from click.testing import CliRunner

from conduit.cli import main
from conduit.ops.auth import Users
from conduit.store.store import Store
from tests.ops.helpers import PASSWORD, base_url, dashboard, run


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def _password(client: httpx.AsyncClient, name: str) -> httpx.Response:
    form = await client.get("/login")
    return await client.post("/login", data={"username": name, "password": PASSWORD,
                                             "csrf_token": _csrf(form), "next": "/channels"})


async def _code(client: httpx.AsyncClient, asked: httpx.Response, code: str) -> httpx.Response:
    """Post the code with the form's hidden fields, as a browser does."""
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', asked.text))
    return await client.post("/login/mfa", data={**hidden, "code": code})


def _web(engine: Any) -> Any:
    return engine.service("dashboard").app.state.web


def _actions(engine: Any, user: str) -> list[tuple[str, str | None]]:
    return [(row["action"], row["detail"]) for row in _web(engine).audit.list(user=user)][::-1]


def _wrong_code(secret: str) -> str:
    """A code that is right for no time step near now."""
    totp, now = pyotp.TOTP(secret), time.time()
    near = {totp.at(now + shift) for shift in (-60, -30, 0, 30, 60)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)


def test_a_user_with_totp_gives_the_code_after_the_password(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            secret = await asyncio.to_thread(_web(engine).users.enrol_totp, "operator")
            asked = await _password(client, "operator")
            # the password alone opens no session: the code is asked for
            assert asked.status_code == 200 and 'name="code"' in asked.text
            assert "conduit_session" not in client.cookies
            assert (await client.get("/api/me")).status_code == 401
            wrong = await _code(client, asked, _wrong_code(secret))
            assert wrong.status_code == 401 and "code" in wrong.text.lower()
            assert (await client.get("/api/me")).status_code == 401
            code = pyotp.TOTP(secret).now()
            done = await _code(client, wrong, code)
            assert done.status_code == 303 and done.headers["location"] == "/channels"
            me = await client.get("/api/me")
            assert me.status_code == 200 and me.json()["name"] == "operator"
            # the same code cannot be used twice (replay), even by a new password step
            client.cookies.clear()
            again = await _password(client, "operator")
            replay = await _code(client, again, code)
            assert replay.status_code == 401
            assert (await client.get("/api/me")).status_code == 401
            assert _actions(engine, "operator") == [
                ("login-failed", "totp"), ("login", "password+totp"), ("login-failed", "totp")]

    run(scenario)


def test_a_code_form_cannot_be_used_without_the_password_step(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            secret = await asyncio.to_thread(_web(engine).users.enrol_totp, "admin")
            form = await client.get("/login")
            answer = await _code(client, form, pyotp.TOTP(secret).now())
            assert answer.status_code == 401
            assert (await client.get("/api/me")).status_code == 401
            # a pending second step is no session, neither as cookie nor as bearer token
            await _password(client, "admin")
            pending = client.cookies.get("conduit_mfa")
            assert pending
            bearer = await client.get("/api/me", headers={"Authorization": f"Bearer {pending}"})
            assert bearer.status_code == 401

    run(scenario)


def test_a_role_that_requires_mfa_cannot_log_in_until_enrolled(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path, mfa_required_roles=["admin"]) as engine, \
                httpx.AsyncClient(base_url=base_url(engine)) as client:
            web = _web(engine)
            token = await asyncio.to_thread(web.users.create_api_token, "admin")
            refused = await _password(client, "admin")
            assert refused.status_code == 403
            assert "conduit users mfa admin" in refused.text
            assert (await client.get("/api/me")).status_code == 401
            # other roles are not asked
            operator = httpx.AsyncClient(base_url=base_url(engine))
            async with operator:
                assert (await _password(operator, "operator")).status_code == 303
            # API tokens are a second credential already: unaffected
            api = await client.get("/api/users", headers={"Authorization": f"Bearer {token}"})
            assert api.status_code == 200
            secret = await asyncio.to_thread(web.users.enrol_totp, "admin")
            asked = await _password(client, "admin")
            assert asked.status_code == 200 and 'name="code"' in asked.text
            done = await _code(client, asked, pyotp.TOTP(secret).now())
            assert done.status_code == 303
            assert (await client.get("/api/me")).json()["role"] == "admin"
            assert _actions(engine, "admin") == [
                ("login-refused", "mfa enrolment needed"), ("login", "password+totp")]

    run(scenario)


def test_local_logins_can_be_switched_off(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path, local_login=False) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            form = await client.get("/login")
            assert 'name="password"' not in form.text
            cookie = client.cookies.get("conduit_login")
            answer = await client.post("/login", data={"username": "admin",
                                                       "password": PASSWORD,
                                                       "csrf_token": cookie or ""})
            assert answer.status_code == 403
            assert (await client.get("/api/me")).status_code == 401

    run(scenario)


def test_users_mfa_command_enrols_and_resets(store_url: str) -> None:
    """On SQLite and PostgreSQL: the 0005 migration, enrolment, a code used once, reset."""
    url = store_url
    store = Store(url)
    store.migrate()
    runner = CliRunner()
    added = runner.invoke(main, ["users", "add", "alice", "--role", "admin", "--password-stdin",
                                 "--store-url", url], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    enrolled = runner.invoke(main, ["users", "mfa", "alice", "--store-url", url])
    assert enrolled.exit_code == 0, enrolled.output
    uri = re.search(r"otpauth://totp/\S+", enrolled.output)
    assert uri, enrolled.output
    secret = pyotp.parse_uri(uri.group(0)).secret
    try:
        users = Users(store.engine)
        code = pyotp.TOTP(secret).now()
        assert users.check_totp("alice", code)
        assert not users.check_totp("alice", code)  # once
        listed = runner.invoke(main, ["users", "list", "--store-url", url])
        assert "totp" in listed.output
        again = runner.invoke(main, ["users", "mfa", "alice", "--store-url", url])
        assert again.exit_code != 0 and "--reset" in again.output
        reset = runner.invoke(main, ["users", "mfa", "alice", "--reset", "--store-url", url])
        assert reset.exit_code == 0, reset.output
        assert not users.has_totp("alice")
    finally:
        store.engine.dispose()


def test_a_logged_in_user_enrols_their_own_second_factor(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            assert (await _password(client, "viewer")).status_code == 303
            offer = await client.get("/account/mfa")
            assert offer.status_code == 200 and "otpauth://totp/" in offer.text
            fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"',
                                     offer.text))
            secret = fields["secret"]
            good = pyotp.TOTP(secret).now()
            wrong_password = await client.post("/account/mfa", data={
                **fields, "password": "not the password", "code": good})
            assert wrong_password.status_code == 400
            wrong_code = await client.post("/account/mfa", data={
                **fields, "password": PASSWORD, "code": _wrong_code(secret)})
            assert wrong_code.status_code == 400
            assert not _web(engine).users.has_totp("viewer")
            # no CSRF token, no enrolment
            forged = await client.post("/account/mfa", data={
                "secret": secret, "password": PASSWORD, "code": good})
            assert forged.status_code == 403
            done = await client.post("/account/mfa", data={
                **fields, "password": PASSWORD, "code": good})
            assert done.status_code == 303
            assert _web(engine).users.has_totp("viewer")
            assert "second factor is on" in (await client.get("/account/mfa")).text
            # the enrolling code is used up; the next login asks for a (new) code
            client.cookies.clear()
            asked = await _password(client, "viewer")
            assert (await _code(client, asked, good)).status_code == 401
            assert ("mfa-enrol", None) in _actions(engine, "viewer")

    run(scenario)
