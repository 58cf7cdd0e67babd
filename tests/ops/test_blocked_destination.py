"""An ordered destination blocked on a message shows as blocked: in the channel API, the
``conduit_destination_blocked`` gauge of ``/metrics``, the channel page and the alerts; and as
flowing again once the message goes through."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from conduit.engine.settings import AlertSettings
from conduit.ops.alerts import Alerter
from tests.ops.helpers import adt, base_url, dashboard, login, run
from tests.ops.test_observability import _metric, _token
from tests.support import MllpReceiver, mllp_exchange, source_port, wait_for


@pytest.mark.timeout(60)
def test_a_blocked_ordered_destination_is_visible_then_flows(tmp_path: Path) -> None:
    answers = ["AE"]  # the receiver answers AE (retryable) until it is fixed
    receiver = MllpReceiver(answer=lambda m: answers[-1])
    channel = {"name": "feed", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
               "destinations": [{"name": "ehr", "type": "mllp", "host": "127.0.0.1",
                                 "port": receiver.port, "ordered": True, "ack_timeout": "1s",
                                 "retry": {"attempts": 2, "initial": "10ms", "max": "100ms"}}]}
    rules = AlertSettings.model_validate({"rules": [
        {"name": "feed blocked", "kind": "destination-blocked"}]})

    with receiver:
        async def scenario() -> None:
            async with dashboard(tmp_path, channels=[channel]) as engine, \
                    httpx.AsyncClient(base_url=base_url(engine)) as viewer:
                await login(viewer, "viewer")
                alerter = Alerter(engine, rules, engine.service("sampler"))
                await asyncio.to_thread(mllp_exchange, source_port(engine, "feed"),
                                        [adt("B1"), adt("B2")])
                held = engine.store.search(control_id="B1")[0].id
                runtime = engine.runtimes["feed"]
                await wait_for(lambda: "ehr" in runtime.blocked_destinations())

                ehr = (await viewer.get("/api/channels/feed")).json()["destinations"][0]
                assert ehr["blocked"] is True and ehr["blocked_message"] == held
                assert ehr["blocked_reason"].startswith(f"message {held}: ")
                # the receiver's words are the message's business: hidden from viewers
                assert ehr["blocked_reason"].endswith(": receiver answered AE: …")
                metrics = (await viewer.get("/metrics", headers=_token(engine))).text
                assert _metric(metrics, "conduit_destination_blocked", channel="feed",
                               destination="ehr") == 1
                page = (await viewer.get("/channels/feed")).text
                assert "blocked</span> on" in page and f'href="/messages/{held}"' in page
                notices = await alerter.evaluate()
                assert [(n["alert"], n["status"], n["subject"], n["value"])
                        for n in notices] == [("feed blocked", "firing", "ehr", float(held))]
                assert f"blocked on message {held}" in notices[0]["summary"]

                answers.append("AA")  # fixed: the held message goes, then the next
                await wait_for(lambda: engine.store.counts()["feed"].get("SENT") == 2)
                assert receiver.control_ids()[-2:] == ["B1", "B2"]
                ehr = (await viewer.get("/api/channels/feed")).json()["destinations"][0]
                assert ehr["blocked"] is False and ehr["blocked_message"] is None
                metrics = (await viewer.get("/metrics", headers=_token(engine))).text
                assert _metric(metrics, "conduit_destination_blocked", channel="feed",
                               destination="ehr") == 0
                assert "flowing" in (await viewer.get("/channels/feed")).text
                notices = await alerter.evaluate()
                assert [(n["alert"], n["status"]) for n in notices] == [
                    ("feed blocked", "resolved")]

        run(scenario)
