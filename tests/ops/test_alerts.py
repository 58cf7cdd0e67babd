"""Alerts: queue depth, error rate, idle channel and open breaker, notified by webhook (a local
HTTP receiver) and by email (a local aiosmtpd server)."""

from __future__ import annotations

import asyncio
import json
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from conduit.engine.settings import AlertSettings
from conduit.ops.alerts import Alerter
from tests.ops.helpers import adt, dashboard, file_channel, run
from tests.support import free_port, mllp_exchange, source_port, wait_for


class Hook:
    """A webhook receiver: records the JSON bodies posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def hook() -> Any:
    receiver = Hook()
    yield receiver
    receiver.close()


@pytest.fixture
def mailbox() -> Any:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


def test_alerts_fire_and_resolve_by_webhook_and_email(tmp_path: Path, hook: Hook,
                                                       mailbox: Any) -> None:
    box, smtp_port = mailbox
    lab = {"name": "lab", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
           "destinations": [{"name": "lis", "type": "mllp", "host": "127.0.0.1",
                             "port": free_port(), "connect_timeout": "200ms",
                             "retry": {"attempts": 1, "initial": "10ms", "max": "10ms"},
                             "breaker": {"failures": 1, "reset": "60s"}}]}
    adt_channel = file_channel(tmp_path)
    adt_channel["destinations"][0]["retry"] = {"attempts": 1, "initial": "10ms", "max": "10ms"}
    settings = AlertSettings.model_validate({
        "repeat": "1h",
        "notifiers": {"hook": {"type": "webhook", "url": hook.url},
                      "mail": {"type": "email", "host": "127.0.0.1", "port": smtp_port,
                               "from": "conduit@test", "to": ["ops@test"]}},
        "rules": [
            {"name": "backlog", "kind": "queue-depth", "channel": "adt", "threshold": 1},
            {"name": "adt errors", "kind": "error-rate", "channel": "adt", "threshold": 0.2,
             "window": "1m"},
            {"name": "lab quiet", "kind": "idle", "channel": "lab", "for": "200ms",
             "notify": ["hook"]},
            {"name": "breaker", "kind": "breaker-open"},
        ]})

    async def scenario() -> None:
        async with dashboard(tmp_path, channels=[adt_channel, lab]) as engine:
            sampler = engine.service("sampler")
            alerter = Alerter(engine, settings, sampler)
            await sampler.sample()
            # a backlog: the workers hold while three messages arrive
            engine.control.buses["adt"].gate.clear()
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                    [adt("Q1"), adt("Q2"), adt("Q3")])
            bus = engine.control.buses["adt"]
            await wait_for(lambda: bus.depth("conduit.adt.source") == 3)
            notices = await alerter.evaluate()
            assert [(n["alert"], n["status"], n["subject"]) for n in notices] == [
                ("backlog", "firing", "conduit.adt.source")]
            assert await alerter.evaluate() == []  # still firing: not again before `repeat`
            engine.control.buses["adt"].gate.set()
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 3)
            # errors: the archive cannot write two messages
            for name in ("E1", "E2"):
                (tmp_path / "out" / f"{name}.hl7").mkdir(parents=True)
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                    [adt("E1"), adt("E2")])
            await wait_for(lambda: engine.store.counts()["adt"].get("ERROR") == 2)
            # the lab's receiver is down: its breaker opens; and the lab has been quiet
            await asyncio.to_thread(mllp_exchange, source_port(engine, "lab"), [adt("L1")])
            await wait_for(lambda: engine.runtimes["lab"].breaker_states().get("lis") == "open")
            await asyncio.sleep(0.25)
            notices = await alerter.evaluate()
            got = {(n["alert"], n["status"]) for n in notices}
            assert got == {("backlog", "resolved"), ("adt errors", "firing"),
                           ("lab quiet", "firing"), ("breaker", "firing")}
            errors = next(n for n in notices if n["alert"] == "adt errors")
            assert errors["value"] == 0.4 and errors["channel"] == "adt"
            breaker = next(n for n in notices if n["alert"] == "breaker")
            assert (breaker["channel"], breaker["subject"]) == ("lab", "lis")
            await wait_for(lambda: len(hook.bodies) == 5 and len(box.messages) == 4)
            assert [b["alert"] for b in hook.bodies].count("backlog") == 2
            subjects = sorted(m["Subject"] for m in box.messages)
            assert any("[FIRING] backlog: adt / conduit.adt.source" in s for s in subjects)
            assert any("[RESOLVED] backlog" in s for s in subjects)
            assert any("[FIRING] breaker: lab / lis" in s for s in subjects)
            assert all(m["To"] == "ops@test" for m in box.messages)
            assert not any("lab quiet" in s for s in subjects)  # that rule notifies the hook

    run(scenario)
