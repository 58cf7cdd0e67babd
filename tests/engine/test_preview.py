"""``engine.preview``: a step of the edited channel that fails on a stored message is counted as
an error with the step named, not raised; the text report ends with the summary."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conduit.engine.loader import load_channel_text
from conduit.engine.pipeline import Pipeline
from conduit.engine.preview import preview, preview_text
from conduit.store import Store
from tests.engine.preview_scenario import NAME, hl7

EDITED = """\
name: adt-preview
source: {type: mllp, port: 0}
transform:
  - set: {field: PID-5.1, value: "{{ 1 / 0 if msg['MSH-9.2'] == 'A08' else 'X' }}"}
destinations:
  - {name: archive, type: file, path: "out/{{ msg['MSH-10'] }}.hl7"}
"""


def test_a_failing_step_is_an_error_per_message(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'conduit.db'}")
    store.migrate()
    deployed = Pipeline(load_channel_text(EDITED.replace("1 / 0", "'Y'"), "c.yaml", tmp_path))

    async def stored() -> None:
        for raw in (hl7("E1", "A01", "P1", "Ann"), hl7("E2", "A08", "P2", "Bob")):
            result = deployed.process(raw)
            await store.accepted(NAME, raw, control_id=None, message_type=None,
                                 status=result.status, transformed=result.transformed,
                                 error=result.reason, routes=result.routes)
        await store.close()

    asyncio.run(stored())
    store = Store(store.url)
    report = preview(Pipeline(load_channel_text(EDITED, "c.yaml", tmp_path)), store)
    first, second = report.messages
    assert first.outcome == "unchanged" and first.status == "TRANSFORMED"
    assert second.outcome == "error" and second.status == "ERROR"
    assert "transform step 1 (set PID-5.1) failed: ZeroDivisionError" in (second.reason or "")
    assert report.counts()["error"] == 1
    assert preview_text(report).endswith(
        "2 messages, 1 unchanged, 0 changed, 0 newly filtered, 0 no longer filtered, 1 errors")
    store.engine.dispose()
