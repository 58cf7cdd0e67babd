"""``POST /api/channels/{name}/preview`` and the dashboard's preview page: admins only, every
message shown audited, nothing sent and nothing written but the audit, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx

from tests.engine.preview_scenario import (
    NAME,
    check_outcomes,
    deployed,
    edited_yaml,
    fingerprint,
    store_traffic,
)
from tests.ops.helpers import base_url, dashboard, login, run
from tests.support import MllpReceiver

#: Written by logging in and by the preview's audit, and by the running engine's full-text
#: indexing job on its own schedule (its index and watermark); the messages' tables must stay as
#: they were. (The CLI's test, with the engine stopped, compares every table.)
AUDIT_AND_LOGINS = ("audit_log", "auth_tokens", "users", "message_text", "store_state")


def _token(engine: Any, name: str) -> dict[str, str]:
    web = engine.service("dashboard").app.state.web
    return {"Authorization": f"Bearer {web.users.create_api_token(name)}"}


def test_preview_api_is_for_admins_audited_and_sends_nothing(tmp_path: Path,
                                                             store_url: str) -> None:
    async def scenario() -> None:
        with MllpReceiver() as receiver:
            async with dashboard(tmp_path, [deployed(tmp_path, receiver.port)],
                                 store_url=store_url) as engine:
                await store_traffic(engine, receiver)
                web = engine.service("dashboard").app.state.web
                url = base_url(engine)
                body = edited_yaml(tmp_path, receiver.port)
                sent, files = len(receiver.messages), sorted((tmp_path / "out").iterdir())
                before = await asyncio.to_thread(fingerprint, store_url, AUDIT_AND_LOGINS)
                path = f"/api/channels/{NAME}/preview"
                for role in ("viewer", "operator"):
                    async with httpx.AsyncClient(base_url=url,
                                                 headers=_token(engine, role)) as api:
                        refused = await api.post(path, content=body)
                        assert refused.status_code == 403, refused.text
                assert web.audit.list(action="preview") == []

                async with httpx.AsyncClient(base_url=url, headers=_token(engine, "admin"),
                                             timeout=30) as api:
                    answer = await api.post(path, content=body,
                                            headers={"Content-Type": "application/yaml"})
                    assert answer.status_code == 200, answer.text
                    assert answer.headers["cache-control"] == "no-store"
                    report = answer.json()
                    check_outcomes(report["messages"])
                    assert report["summary"] == {
                        "messages": 5, "unchanged": 1, "changed": 2, "newly_filtered": 1,
                        "no_longer_filtered": 1, "errors": 0, "truncated": False}
                    audited = web.audit.list(action="preview")
                    assert sorted(a["message_id"] for a in audited) == \
                        sorted(m["id"] for m in report["messages"])
                    assert {(a["username"], a["detail"]) for a in audited} == {
                        ("admin", f"channel={NAME} api")}

                    last = await api.post(path, content=body, params={"last": 1})
                    assert [m["control_id"] for m in last.json()["messages"]] == ["M5"]
                    broken = await api.post(path, content=body.replace("    type: file\n",
                                                                       "    typ: file\n"))
                    assert broken.status_code == 422
                    assert any(re.match(rf"{NAME}\.yaml:\d+: destinations\[0\]", p)
                               for p in broken.json()["detail"]["problems"]), broken.text
                    renamed = await api.post(path, content=body.replace(
                        f"name: {NAME}", "name: other"))
                    assert renamed.status_code == 422 and "keep that name" in renamed.text
                    assert (await api.post("/api/channels/nope/preview",
                                           content=body)).status_code == 404

                assert len(receiver.messages) == sent
                assert sorted((tmp_path / "out").iterdir()) == files
                after = await asyncio.to_thread(fingerprint, store_url, AUDIT_AND_LOGINS)
                assert after == before

    run(scenario)


def test_preview_page_for_admins_shows_the_results_and_audits(tmp_path: Path) -> None:
    async def scenario() -> None:
        with MllpReceiver() as receiver:
            async with dashboard(tmp_path, [deployed(tmp_path, receiver.port)]) as engine:
                await store_traffic(engine, receiver)
                web = engine.service("dashboard").app.state.web
                async with httpx.AsyncClient(base_url=base_url(engine), timeout=30) as browser:
                    csrf = await login(browser, "operator")
                    channel = await browser.get(f"/channels/{NAME}")
                    assert "Preview a change" not in channel.text
                    assert (await browser.get(f"/channels/{NAME}/preview")).status_code == 403
                    refused = await browser.post(f"/channels/{NAME}/preview", data={
                        "yaml": "name: x", "csrf_token": csrf})
                    assert refused.status_code == 403
                async with httpx.AsyncClient(base_url=base_url(engine), timeout=30) as browser:
                    csrf = await login(browser, "admin")
                    channel = await browser.get(f"/channels/{NAME}")
                    assert f'action="/channels/{NAME}/preview"' in channel.text
                    form = await browser.get(f"/channels/{NAME}/preview")
                    assert form.status_code == 200
                    assert "upper }}" in form.text  # the deployed YAML, to edit
                    assert web.audit.list(action="preview") == []
                    answer = await browser.post(f"/channels/{NAME}/preview", data={
                        "yaml": edited_yaml(tmp_path, receiver.port), "since": "1h",
                        "last": "", "csrf_token": csrf})
                    assert answer.status_code == 200, answer.text
                    assert ("5 messages, 1 unchanged, 2 changed, 1 newly filtered, "
                            "1 no longer filtered, 0 errors") in answer.text
                    assert '<span class="add">+PID|1||P1^^^HOSP^MR||smith^GIVEN' in answer.text
                    assert "newly filtered" in answer.text
                    assert len(web.audit.list(action="preview")) == 5
                    no_csrf = await browser.post(f"/channels/{NAME}/preview",
                                                 data={"yaml": "name: x"})
                    assert no_csrf.status_code == 403
                    broken = await browser.post(f"/channels/{NAME}/preview", data={
                        "yaml": "name: adt-preview\nsource: {type: mllp, prt: 1}\n",
                        "csrf_token": csrf})
                    assert broken.status_code == 422
                    assert "adt-preview.yaml:2: source" in broken.text

    run(scenario)
