"""Viewers see no PHI: reasons and errors carry field paths, never the values they quote.

Through the real dashboard and API, with a viewer's and an operator's login: a message FILTERED
by the channel's filter (its reason quotes the patient's name), one a transform refused (the
exception quotes a name) and one every destination's ``when`` filtered (the delivery's reason
quotes the patient id). Operators see the values, and each such view is audited.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.ops.helpers import adt, base_url, dashboard, login, run
from tests.support import mllp_exchange, source_port, wait_for

SECRETS = ("lowercasesecretname", "secretgivenname", "secretpatient9")

FAILING_STEP = '''
def fail(state):
    if state.message.get("PID-3.1") == "ERR1":
        raise ValueError("cannot case the name " + state.message.get("PID-5.2"))
'''


def _channel(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "channels").mkdir(parents=True, exist_ok=True)
    (tmp_path / "channels" / "failing.py").write_text(FAILING_STEP)
    return {"name": "adt", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
            "filter": {"field": "PID-5.1", "equals": "FAMILYNAME"},
            "transform": [{"python": "failing.py:fail"}],
            "destinations": [{"name": "archive", "type": "file",
                              "when": {"field": "PID-3.1", "equals": "PAT1"},
                              "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")}]}


def _messages() -> list[bytes]:
    filtered = adt("F1").replace(b"FAMILYNAME^GIVEN", b"lowercasesecretname^GIVEN")
    failed = adt("E1", "ERR1").replace(b"^GIVEN", b"^secretgivenname")
    routed_away = adt("W1", "secretpatient9")
    return [filtered, failed, routed_away]


def _no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} shown to a viewer by {where}"


def test_viewers_see_field_paths_operators_see_values_audited(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dashboard(tmp_path, channels=[_channel(tmp_path)]) as engine:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), _messages())
            await wait_for(lambda: sum(engine.store.counts().get("adt", {}).values()) == 3
                           and "RECEIVED" not in engine.store.counts()["adt"])
            ids = {r.control_id: r.id for r in engine.store.search(channel="adt")}
            url = base_url(engine)
            async with httpx.AsyncClient(base_url=url) as viewer, \
                    httpx.AsyncClient(base_url=url) as operator, \
                    httpx.AsyncClient(base_url=url) as admin:
                await login(viewer, "viewer")
                await login(operator, "operator")
                await login(admin, "admin")

                # the viewer: every route that shows reasons and errors
                pages = ["/api/messages", "/messages", "/channels/adt", "/api/channels",
                         "/api/deadletters", "/messages?status=FILTERED",
                         "/api/messages?status=ERROR"]
                pages += [f"/api/messages/{i}" for i in ids.values()]
                pages += [f"/messages/{i}" for i in ids.values()]
                for path in pages:
                    answer = await viewer.get(path)
                    assert answer.status_code == 200, path
                    _no_secret(answer.text, path)
                seen = (await viewer.get(f"/api/messages/{ids['F1']}")).json()
                assert seen["status"] == "FILTERED"
                assert seen["error"] == "PID-5.1 is …, expected 'FAMILYNAME'"
                failed = (await viewer.get(f"/api/messages/{ids['E1']}")).json()
                assert failed["error"] == "transform step 1 (python failing.py:fail) failed: " \
                                          "ValueError: …", failed["error"]
                routed = (await viewer.get(f"/api/messages/{ids['W1']}")).json()
                assert routed["deliveries"][0]["error"] == "PID-3.1 is …, expected 'PAT1'"
                page = (await viewer.get(f"/messages/{ids['F1']}")).text
                assert "PID-5.1 is …, expected &#39;FAMILYNAME&#39;" in page

                # the operator sees the values ...
                whole = (await operator.get(f"/api/messages/{ids['F1']}")).json()
                assert whole["error"] == ("PID-5.1 is 'lowercasesecretname', "
                                          "expected 'FAMILYNAME'")
                listed = (await operator.get("/api/messages", params={
                    "patient": "secretpatient9"})).json()["items"]
                assert [m["control_id"] for m in listed] == ["W1"]
                assert listed[0]["patient_id"] == "secretpatient9"
                assert "secretgivenname" in (await operator.get("/messages")).text
                assert "secretgivenname" in (await operator.get("/channels/adt")).text

                # ... and each such view is audited: listings, searches, the channel's errors
                audit = (await admin.get("/api/audit", params={"action": "search"})
                         ).json()["items"]
                details = [(a["username"], a["detail"], a["message_id"]) for a in audit]
                assert ("operator", "api patient=secretpatient9", ids["W1"]) in details
                assert ("operator", "dashboard", ids["E1"]) in details
                assert ("operator", "dashboard channel=adt status=ERROR", ids["E1"]) in details
                assert not [a for a in audit if a["username"] == "viewer"]

    run(scenario)
