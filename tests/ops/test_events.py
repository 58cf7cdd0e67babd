"""The event log seen from the dashboard (issue 19): logins (never a password), users,
reprocessing and alerts are recorded; ``/api/events`` and ``/events`` list them with filters
and paging for any logged-in role; a channel's page shows its last few."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from conduit.engine.settings import AlertSettings
from conduit.ops.alerts import Alerter
from tests.ops.helpers import PASSWORD, adt, base_url, dashboard, login, run
from tests.support import mllp_exchange, source_port, wait_for

WRONG = "Tr0ub4dor&3-not-it"


async def _login_form(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    return await client.post("/login", data={"username": name, "password": password,
                                             "csrf_token": token.group(1), "next": "/"})


@pytest.mark.timeout(60)
def test_logins_users_and_reprocessing_are_listed_without_passwords(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            url = base_url(engine)
            async with httpx.AsyncClient(base_url=url) as stranger:
                failed = await _login_form(stranger, "operator", WRONG)
                assert failed.status_code == 401
                # a password typed into the name field: the name is not shown
                early = await _login_form(stranger, PASSWORD, "x")
                assert early.status_code == 401
            async with httpx.AsyncClient(base_url=url) as admin:
                csrf = await login(admin, "admin")
                headers = {"X-CSRF-Token": csrf}
                added = await admin.post("/api/users", headers=headers, json={
                    "name": "nina", "password": "a long enough password", "role": "viewer"})
                assert added.status_code == 201, added.text
                assert (await admin.delete("/api/users/nina", headers=headers)).status_code \
                    == 200
                await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                        [adt("R1")])
                await wait_for(lambda: engine.store.counts().get("adt", {}).get("SENT") == 1)
                message_id = engine.store.search(channel="adt")[0].id
                again = await admin.post(f"/api/messages/{message_id}/reprocess",
                                         headers=headers)
                assert again.status_code == 200, again.text
                await admin.post("/logout", headers=headers)
            async with httpx.AsyncClient(base_url=url) as viewer:
                await login(viewer, "viewer")
                await engine.events.settled()
                answer = await viewer.get("/api/events", params={"limit": 50})
                assert answer.status_code == 200
                listed = answer.json()["events"]
                mine = [(e["kind"], e["user"], e["level"]) for e in reversed(listed)
                        if e["kind"].startswith(("login", "user.added", "user.removed",
                                                 "messages"))
                        and e["user"] in ("operator", "admin", "viewer")]
                assert mine == [
                    ("login.failed", "operator", "warning"),
                    ("login.succeeded", "admin", "info"),
                    ("user.added", "admin", "info"),
                    ("user.removed", "admin", "info"),
                    ("messages.reprocessed", "admin", "info"),
                    ("login.logout", "admin", "info"),
                    ("login.succeeded", "viewer", "info")]
                texts: dict[str, str] = {}
                for e in listed:  # the newest of each kind
                    texts.setdefault(e["kind"], e["text"])
                failures = [(e["user"], e["text"]) for e in listed if e["kind"] == "login.failed"]
                assert failures == [
                    (None, "unknown user name (from 127.0.0.1)"),
                    ("operator", "wrong password or user disabled (from 127.0.0.1)")]
                assert texts["user.added"] == "user nina added as viewer"
                assert texts["messages.reprocessed"] == f"reprocessed 1 message ({message_id})"
                everything = answer.text + (await viewer.get("/events")).text
                for secret in (WRONG, PASSWORD, "a long enough password"):
                    assert secret not in everything

                # filters: a family, a level, a user; paging by `next`
                logins = (await viewer.get("/api/events?kind=login&level=warning")).json()
                assert [e["kind"] for e in logins["events"]] == ["login.failed"] * 2
                admins = (await viewer.get("/api/events?user=admin&kind=user")).json()
                assert [e["kind"] for e in admins["events"]] == ["user.removed", "user.added"]
                first = (await viewer.get("/api/events?limit=2")).json()
                assert len(first["events"]) == 2 and first["next"]["before"] == \
                    first["events"][1]["id"]
                second = (await viewer.get("/api/events", params=first["next"])).json()
                assert second["events"][0]["id"] < first["events"][1]["id"]
                bad = await viewer.get("/api/events?since=yesterday-ish")
                assert bad.status_code == 422

                page = (await viewer.get("/events?kind=login.failed&user=operator")).text
                assert page.count('class="event warning"') == 1
                assert "wrong password or user disabled" in page
                assert '<a href="/events">Events</a>' in page  # in the nav
                channel = (await viewer.get("/channels/adt")).text
                assert 'id="channel-events"' in channel and "deployed from" in channel

    run(scenario)


@pytest.mark.timeout(60)
def test_an_alert_firing_then_resolving_is_recorded_once_each(tmp_path: Path) -> None:
    rules = AlertSettings.model_validate({"repeat": "0s", "rules": [
        {"name": "adt quiet", "kind": "idle", "channel": "adt", "for": "1s"}]})

    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            alerter = Alerter(engine, rules, engine.service("sampler"))
            await asyncio.sleep(1.1)
            assert [n["status"] for n in await alerter.evaluate()] == ["firing"]
            assert [n["status"] for n in await alerter.evaluate()] == ["firing"]  # a repeat
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [adt("Q1")])
            assert [n["status"] for n in await alerter.evaluate()] == ["resolved"]
            await engine.events.settled()
            async with httpx.AsyncClient(base_url=base_url(engine)) as viewer:
                await login(viewer, "viewer")
                found = (await viewer.get("/api/events?kind=alert")).json()["events"]
            assert [(e["kind"], e["level"], e["channel"]) for e in found] == [
                ("alert.resolved", "info", "adt"), ("alert.fired", "warning", "adt")]
            assert found[1]["text"].startswith("adt quiet: adt: seconds without a message")

    run(scenario)


@pytest.mark.timeout(60)
def test_a_second_factor_failing_then_passing_is_recorded(tmp_path: Path) -> None:
    import pyotp

    from tests.ops.test_mfa import _code, _password, _wrong_code

    async def scenario() -> None:
        async with dashboard(tmp_path) as engine, httpx.AsyncClient(
                base_url=base_url(engine)) as client:
            web = engine.service("dashboard").app.state.web
            secret = await asyncio.to_thread(web.users.enrol_totp, "operator")
            asked = await _password(client, "operator")
            wrong = await _code(client, asked, _wrong_code(secret))
            code = pyotp.TOTP(secret).now()
            assert (await _code(client, wrong, code)).status_code == 303
            await engine.events.settled()
            found = (await client.get("/api/events?kind=login")).json()["events"]
            assert [(e["kind"], e["user"], e["text"]) for e in reversed(found)] == [
                ("login.failed", "operator", "password right, second-factor code wrong or "
                                             "used before (from 127.0.0.1)"),
                ("login.succeeded", "operator", "logged in by password+totp (from 127.0.0.1)")]
            assert secret not in str(found) and code not in str(found)

    run(scenario)
