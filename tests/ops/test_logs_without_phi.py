"""PHI stays out of the logs above DEBUG: ``conduit run`` at its default level (INFO) handles
messages that are filtered, refused by a transform, rejected as unreadable, dropped by a failing
destination and read from a file named after a patient, while an operator searches and reads
them; all it logs is captured and holds none of the values. ``/metrics`` requests log the
token's user."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx
import pytest
import structlog

from conduit.core.reason import Reason, value
from conduit.engine.logs import configure_logging
from conduit.ops.auth import Users
from conduit.store import Store
from tests.ops.helpers import PASSWORD, adt
from tests.support import engine_process, free_port, mllp_exchange, wait_until, write_channel

SECRETS = ("lowercasesecretname", "secretgivenname", "SECRETPATIENT5", "SECRETJUNK",
           "SECRETFILENAME", "SECRETFILECONTENT")

FAILING_STEP = '''
def fail(state):
    if state.message.get("PID-3.1") == "ERR1":
        raise ValueError("cannot case the name " + state.message.get("PID-5.2"))
'''


def _channels(tmp_path: Path, port: int) -> Path:
    folder = tmp_path / "channels"
    folder.mkdir()
    (folder / "failing.py").write_text(FAILING_STEP)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the destination wants a folder")
    write_channel(folder, {
        "name": "phi", "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
        "filter": {"field": "PID-5.1", "equals": "FAMILYNAME"},
        "transform": [{"python": "failing.py:fail"}],
        "destinations": [{"name": "chart", "type": "file",
                          "path": str(blocked / "{{ msg['PID-3.1'] }}.hl7"),
                          "retry": {"attempts": 2, "initial": "10ms", "max": "10ms"}},
                         {"name": "ehr", "type": "http",  # nobody listens there
                          "url": f"http://127.0.0.1:{free_port()}/patients/"
                                 "{{ msg['PID-3.1'] }}",
                          "retry": {"attempts": 2, "initial": "10ms", "max": "10ms"}}]})
    write_channel(folder, {
        "name": "inbox", "source": {"type": "file", "directory": str(tmp_path / "in"),
                                    "poll_interval": "100ms", "settle": "0s"},
        "destinations": [{"name": "archive", "type": "file",
                          "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")}]})
    (tmp_path / "in").mkdir()
    return folder


def _users(data: Path) -> str:
    store = Store(f"sqlite:///{data / 'conduit.db'}")
    store.migrate()
    users = Users(store.engine)
    users.add("operator", PASSWORD, "operator")
    users.add("prometheus", PASSWORD, "viewer")
    users.add("viewer", PASSWORD, "viewer")
    token = users.create_api_token("prometheus", "scraper")
    store.engine.dispose()
    return token


def _login(client: httpx.Client, name: str) -> None:
    form = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    client.post("/login", data={"username": name, "password": PASSWORD,
                                "csrf_token": csrf.group(1), "next": "/"})


@pytest.mark.timeout(90)
def test_a_phi_bearing_flow_logs_no_value_at_info(tmp_path: Path) -> None:
    port = free_port()
    folder = _channels(tmp_path, port)
    data = tmp_path / "data"
    token = _users(data)
    messages = [
        adt("F1").replace(b"FAMILYNAME^GIVEN", b"lowercasesecretname^GIVEN"),  # filtered
        adt("E1", "ERR1").replace(b"^GIVEN", b"^secretgivenname"),  # a transform refuses it
        adt("D1", "SECRETPATIENT5"),  # the destination cannot write it
        b"SECRETJUNK is not HL7 at all",  # rejected (AR)
    ]
    with engine_process(folder, data) as engine:
        url = next(re.search(r"dashboard (http://\S+)", line).group(1).rstrip("/")
                   for line in engine.output if "conduit: dashboard" in line)
        mllp_exchange(port, messages)
        (tmp_path / "in" / "SECRETFILENAME_DOE.hl7").write_text("SECRETFILECONTENT, no HL7")
        with httpx.Client(base_url=url) as operator, httpx.Client(base_url=url) as viewer:
            _login(operator, "operator")
            _login(viewer, "viewer")

            def settled() -> bool:
                items = operator.get("/api/messages").json()["items"]
                return len(items) == 5 and all(m["status"] in ("FILTERED", "ERROR")
                                               for m in items)

            wait_until(settled, timeout=20)
            # an operator searches by patient and reads every message (values included)
            found = operator.get("/api/messages", params={"patient": "SECRETPATIENT5"})
            assert found.json()["items"][0]["patient_id"] == "SECRETPATIENT5"
            for item in operator.get("/api/messages").json()["items"]:
                operator.get(f"/api/messages/{item['id']}")
                operator.get(f"/messages/{item['id']}")
            operator.get("/messages", params={"q": "secretgivenname"})
            # a viewer sees neither the values nor the name of the file a message came from
            shown = viewer.get("/api/messages").text + "".join(
                viewer.get(f"/messages/{m['id']}").text
                for m in viewer.get("/api/messages").json()["items"])
            assert "file:…" in shown
            for secret in SECRETS:
                assert secret not in shown
        metrics = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {token}"})
        assert metrics.status_code == 200
        time.sleep(0.3)  # the last lines out
    logged = "".join(engine.output)
    assert "delivery failed, dead-lettered" in logged and "http request" in logged
    for secret in SECRETS:
        assert secret not in logged, f"{secret!r} logged:\n{logged}"
    metrics_line = next(line for line in engine.output if "path=/metrics" in line)
    assert "user=prometheus" in metrics_line


def test_values_in_log_fields_are_hidden_above_debug(capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever a log call passes (a Reason, an exception's text, a file name), an event above
    DEBUG keeps what names the problem and hides the values; DEBUG keeps them."""
    saved = structlog.get_config()
    configure_logging("debug")  # writes to this test's captured stderr
    try:
        log = structlog.get_logger("test")
        reason = Reason.of("PID-5.1 is ", value("'SECRETNAME'"), ", expected 'X'")
        log.warning("file kept", file="SECRETFILE.hl7", error=reason,
                    remote="file:SECRETFILE.hl7#2")
        log.error("poll failed", error="FileNotFoundError: [Errno 2] No such file: "
                                       "'/in/SECRETPATH.hl7'")
        log.info("refused", reason=f"not an HL7 v2 message: {socket.gethostname()} SECRETBYTES")
        log.debug("detail", error=reason)
    finally:
        structlog.configure(**saved)
    lines = capsys.readouterr().err.splitlines()
    above = "\n".join(line for line in lines if "[debug" not in line)
    for secret in ("SECRETNAME", "SECRETFILE", "SECRETPATH", "SECRETBYTES"):
        assert secret not in above, above
    assert "PID-5.1 is …, expected 'X'" in above
    assert "error=FileNotFoundError" in above and "not an HL7 v2 message" in above
    assert "SECRETNAME" in next(line for line in lines if "[debug" in line)
