"""The channel editor's API (``/api/channels/{name}/yaml``, ``/versions``, ``/rollback``) and its
dashboard forms: secrets masked for non-admins, validate without deploying (problems with line
numbers), deploy keeping the previous version and the queued messages, rollback as a new
version; a broken YAML never replaces the file; everything audited."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.ops.helpers import adt, base_url, dashboard, file_channel, login, run
from tests.support import mllp_exchange, source_port, wait_for

SECRET = "hunter2-literal"


def _channel(tmp_path: Path) -> dict[str, Any]:
    """An archive channel with a second (never reached) HTTP destination holding a literal
    password, one from the environment and one in its URL."""
    channel = file_channel(tmp_path)
    channel["destinations"].append({
        "name": "partner", "type": "http", "url": f"http://bob:{SECRET}@127.0.0.1:9/in",
        "when": {"field": "MSH-9.2", "equals": "NEVER"},
        "auth": {"type": "basic", "username": "conduit", "password": SECRET}})
    channel["destinations"].append({
        "name": "partner2", "type": "http", "url": "http://127.0.0.1:9/in",
        "when": {"field": "MSH-9.2", "equals": "NEVER"},
        "auth": {"type": "bearer", "token": "${HOME}"}})
    return channel


def _token(engine: Any, name: str) -> dict[str, str]:
    web = engine.service("dashboard").app.state.web
    return {"Authorization": f"Bearer {web.users.create_api_token(name)}"}


def _edited(text: str, description: str) -> str:
    data = yaml.safe_load(text)
    data["description"] = description
    return yaml.safe_dump(data, sort_keys=False)


def test_yaml_is_masked_for_non_admins_and_editing_is_for_admins(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path, [_channel(tmp_path)]) as engine:
            web = engine.service("dashboard").app.state.web
            path = tmp_path / "channels" / "adt.yaml"
            written = path.read_text()
            url = base_url(engine)
            for role in ("viewer", "operator"):
                async with httpx.AsyncClient(base_url=url, headers=_token(engine, role)) as api:
                    answer = await api.get("/api/channels/adt/yaml")
                    assert answer.status_code == 200, answer.text
                    body = answer.json()
                    assert body["masked"] is True and SECRET not in body["yaml"]
                    assert "password: '***'" in body["yaml"] or 'password: "***"' in body["yaml"]
                    assert "bob:***@" in body["yaml"] and "${HOME}" in body["yaml"]
                    assert body["yaml"].count("\n") == written.count("\n")
                    for method, target in (("post", "/api/channels/adt/yaml"),
                                           ("post", "/api/channels/adt/yaml/validate"),
                                           ("post", "/api/channels/adt/rollback/1")):
                        refused = await api.request(method, target, content=written)
                        assert refused.status_code == 403, (role, target, refused.text)
                    page = await api.get("/channels/adt/yaml")
                    assert page.status_code == 200 and SECRET not in page.text
                    assert "<textarea" not in page.text
            async with httpx.AsyncClient(base_url=url, headers=_token(engine, "admin")) as api:
                body = (await api.get("/api/channels/adt/yaml")).json()
                assert body["masked"] is False and body["yaml"] == written
                assert body["path"] == str(path) and body["version"] is None
            assert path.read_text() == written
            views = web.audit.list(action="channel-yaml-view")
            assert {v["username"] for v in views} == {"viewer", "operator", "admin"}

    run(scenario)


def test_validate_deploy_and_roll_back(tmp_path: Path, store_url: str) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path, store_url=store_url) as engine:
            web = engine.service("dashboard").app.state.web
            path = tmp_path / "channels" / "adt.yaml"
            original = path.read_text()
            async with httpx.AsyncClient(base_url=base_url(engine), headers=_token(
                    engine, "admin"), timeout=30) as api:
                # validate: every problem with its line, nothing written, nothing deployed
                broken = original.replace("type: file", "typ: file").replace(
                    "name: adt\n", "name: adt\ndescripton: typo\n")
                answer = await api.post("/api/channels/adt/yaml/validate", content=broken)
                assert answer.status_code == 422, answer.text
                problems = answer.json()["detail"]["problems"]
                assert len(problems) >= 2, problems
                assert all(re.match(r"adt\.yaml:\d+: ", p) for p in problems), problems
                line = original.splitlines().index("name: adt") + 2
                assert any(p.startswith(f"adt.yaml:{line}: descripton") for p in problems)
                good = _edited(original, "edited once")
                assert (await api.post("/api/channels/adt/yaml/validate",
                                       content=good)).json() == {"name": "adt", "valid": True}
                assert path.read_text() == original
                assert (await api.get("/api/channels/adt/versions")).json() == []

                # a broken YAML deployed: refused, the file and the running channel unchanged
                running = engine.control.channels["adt"]
                refused = await api.post("/api/channels/adt/yaml", content=broken)
                assert refused.status_code == 422
                assert path.read_text() == original
                assert engine.control.channels["adt"] is running
                renamed = await api.post("/api/channels/adt/yaml",
                                         content=good.replace("name: adt", "name: adt2"))
                assert renamed.status_code == 422
                assert re.match(r"adt\.yaml:1: name: .*renamed",
                                renamed.json()["detail"]["problems"][0]), renamed.text

                # deploy: the file as it was is kept as version 1, the edit is version 2
                answer = await api.post("/api/channels/adt/yaml", content=good,
                                        params={"comment": "a description"})
                assert answer.status_code == 200, answer.text
                assert answer.json() == {"name": "adt", "version": 2, "state": "started"}
                assert path.read_text() == good
                assert engine.control.channels["adt"].description == "edited once"
                listed = (await api.get("/api/channels/adt/versions")).json()
                assert [(v["version"], v["user"], v["current"]) for v in listed] == [
                    (2, "admin", True), (1, None, False)]
                assert listed[0]["comment"] == "a description"
                first = (await api.get("/api/channels/adt/versions/1")).json()
                assert first["yaml"] == original
                port = source_port(engine, "adt")
                await _sent(engine, port, "AFTER-EDIT", 1)

                # rollback: version 1's text deployed again, as version 3
                back = await api.post("/api/channels/adt/rollback/1")
                assert back.status_code == 200, back.text
                assert back.json()["version"] == 3 and back.json()["rolled_back_to"] == 1
                assert path.read_text() == original
                assert engine.control.channels["adt"].description in ("", None)
                listed = (await api.get("/api/channels/adt/versions")).json()
                assert [(v["version"], v["current"]) for v in listed] == [
                    (3, True), (2, False), (1, False)]
                assert (await api.post("/api/channels/adt/rollback/9")).status_code == 404
                await _sent(engine, source_port(engine, "adt"), "AFTER-ROLLBACK", 2)

            actions = [(a["action"], a["detail"]) for a in web.audit.list()
                       if a["action"] in ("channel-yaml-deploy", "channel-yaml-rollback")]
            assert actions == [("channel-yaml-rollback", "adt to version 1 as version 3 api"),
                               ("channel-yaml-deploy", "adt version 2 api")]
            # the event log says who deployed what, and why
            from conduit.store import eventlog

            await engine.events.settled()
            events = [(e.kind, e.user, e.text) for e in eventlog.listed(
                engine.store.engine, kind="channel", channel="adt", user="admin")]
            assert [kind for kind, _, _ in events] == ["channel.redeployed"] * 2, events
            assert "(rolled back to version 1)" in events[0][2]
            assert "(a description)" in events[1][2]

    run(scenario)


async def _sent(engine: Any, port: int, control_id: str, total: int) -> None:
    await asyncio.to_thread(mllp_exchange, port, [adt(control_id)])
    await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == total, 20)


def test_a_deploy_that_cannot_start_puts_the_previous_file_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            path = tmp_path / "channels" / "adt.yaml"
            original = path.read_text()
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen()
                busy = original.replace("port: 0", f"port: {taken.getsockname()[1]}")
                async with httpx.AsyncClient(base_url=base_url(engine), headers=_token(
                        engine, "admin"), timeout=30) as api:
                    answer = await api.post("/api/channels/adt/yaml", content=busy)
                    assert answer.status_code == 409, answer.text
                    assert "runs its previous version again" in answer.json()["detail"]
                    assert path.read_text() == original
                    assert engine.control.state("adt") == "started"
                    listed = (await api.get("/api/channels/adt/versions")).json()
                    assert [v["version"] for v in listed] == [1]  # only the file as found

    run(scenario)


def test_dashboard_forms_validate_deploy_and_roll_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            path = tmp_path / "channels" / "adt.yaml"
            original = path.read_text()
            async with httpx.AsyncClient(base_url=base_url(engine), timeout=30) as client:
                csrf = await login(client, "admin")
                page = await client.get("/channels/adt")
                assert 'href="/channels/adt/yaml"' in page.text
                page = await client.get("/channels/adt/yaml")
                assert "<textarea" in page.text and "Roll back" not in page.text
                broken = original.replace("type: file", "typ: file")
                answer = await client.post("/channels/adt/yaml", data={
                    "csrf_token": csrf, "yaml": broken, "do": "deploy"})
                assert answer.status_code == 422
                assert re.search(r"adt\.yaml:\d+: destinations\[0\]", answer.text)
                assert path.read_text() == original
                good = _edited(original, "from the form")
                answer = await client.post("/channels/adt/yaml", data={
                    "csrf_token": csrf, "yaml": good.replace("\n", "\r\n"), "do": "validate"})
                assert answer.status_code == 200 and 'id="yaml-valid"' in answer.text
                assert 'formaction="/channels/adt/preview"' in answer.text
                preview = await client.post("/channels/adt/preview", data={  # its button
                    "csrf_token": csrf, "yaml": good, "comment": "", "do": "validate"})
                assert preview.status_code == 200 and 'id="preview-summary"' in preview.text
                answer = await client.post("/channels/adt/yaml", data={
                    "csrf_token": csrf, "yaml": good, "do": "deploy", "comment": "form"})
                assert answer.status_code == 303
                assert answer.headers["location"] == "/channels/adt/yaml?deployed=2"
                assert path.read_text() == good
                page = await client.get("/channels/adt/yaml?compare=1")
                assert "+description: from the form" in page.text
                answer = await client.post("/channels/adt/rollback/1",
                                           data={"csrf_token": csrf})
                assert answer.status_code == 303
                assert path.read_text() == original
            async with httpx.AsyncClient(base_url=base_url(engine)) as client:
                csrf = await login(client, "operator")
                answer = await client.post("/channels/adt/rollback/2",
                                           data={"csrf_token": csrf})
                assert answer.status_code == 403
                assert path.read_text() == original

    run(scenario)


def test_a_channel_uploaded_through_the_api_is_kept_and_edited_where_it_lives(
        tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path) as engine:
            original = (tmp_path / "channels" / "adt.yaml").read_text()
            uploaded = _edited(original, "uploaded")
            async with httpx.AsyncClient(base_url=base_url(engine), headers=_token(
                    engine, "admin"), timeout=30) as api:
                answer = await api.post("/api/channels", json={"path": "adt.yaml",
                                                               "content": uploaded})
                assert answer.status_code == 200, answer.text
                listed = (await api.get("/api/channels/adt/versions")).json()
                assert [(v["version"], v["comment"], v["current"]) for v in listed] == [
                    (1, "deployed from adt.yaml (api)", True)]
                edited = _edited(original, "edited after the upload")
                answer = await api.post("/api/channels/adt/yaml", content=edited)
                assert answer.json()["version"] == 2
            kept = tmp_path / "data" / "deployed" / "adt.yaml"
            assert kept.read_text() == edited  # where the running channel is loaded from
            assert (tmp_path / "channels" / "adt.yaml").read_text() == original

    run(scenario)
