"""Shared by the preview tests: a deployed channel, traffic stored through a running engine, the
edited channel, and a fingerprint of everything in the store (to show nothing was written)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine

from tests.support import MllpReceiver, mllp_exchange, msa, source_port, wait_for

NAME = "adt-preview"


def hl7(control_id: str, event: str, patient: str, family: str) -> bytes:
    return (f"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^{event}^ADT_A01|{control_id}|P|"
            f"2.5\rEVN|{event}|20260101120000\rPID|1||{patient}^^^HOSP^MR||{family}^GIVEN||"
            f"19800101|F\rPV1|1|I|WARD^101^1\r").encode()


#: Oldest first, as the preview lists them.
TRAFFIC = [
    hl7("M1", "A01", "P1", "Smith"),    # passes both: its name changes case (changed)
    hl7("M2", "A03", "P2", "Jones"),    # passes both: changed; downstream's when stops it
    hl7("M3", "A08", "P3", "Brown"),    # the edited channel's new filter stops it
    hl7("M4", "A01", "BLOCKED", "Lee"),  # the deployed filter stopped it, the edited one not
    hl7("M5", "A04", "P5", ""),         # no family name: nothing to change (unchanged)
]


def deployed(tmp_path: Path, downstream_port: int) -> dict[str, Any]:
    return {
        "name": NAME, "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
        "filter": {"not": {"field": "PID-3.1", "equals": "BLOCKED"}},
        "transform": [{"set": {"field": "PID-5.1", "value": "{{ msg['PID-5.1'] | upper }}"}}],
        "destinations": [
            {"name": "archive", "type": "file",
             "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")},
            {"name": "downstream", "type": "mllp", "host": "127.0.0.1",
             "port": downstream_port, "when": {"field": "MSH-9.2", "in": ["A01", "A04"]}},
        ]}


EDITED_YAML = """\
name: adt-preview
source: {type: mllp, host: 127.0.0.1, port: 0}
filter:
  not: {field: MSH-9.2, equals: A08}
transform:
  - set: {field: PID-5.1, value: "{{ msg['PID-5.1'] | lower }}"}
destinations:
  - name: archive
    type: file
    path: "OUT/{{ msg['MSH-10'] }}.hl7"
  - name: downstream
    type: mllp
    host: 127.0.0.1
    port: PORT
    when: {field: MSH-9.2, in: [A01, A04]}
"""


def edited_yaml(tmp_path: Path, downstream_port: int) -> str:
    return (EDITED_YAML.replace("OUT", str(tmp_path / "out"))
            .replace("PORT", str(downstream_port)))


async def store_traffic(engine: Any, receiver: MllpReceiver) -> None:
    """Send :data:`TRAFFIC` through the running engine and wait until all of it is done."""
    answers = await asyncio.to_thread(mllp_exchange, source_port(engine, NAME), TRAFFIC)
    assert [msa(a)[1] for a in answers] == ["AA"] * len(TRAFFIC), answers
    await wait_for(lambda: engine.store.counts().get(NAME) == {"SENT": 4, "FILTERED": 1})
    await wait_for(lambda: len(receiver.messages) == 2)  # M1 and M5 (A01, A04)


def fingerprint(url: str, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every row of every table in the store (but ``skip``), hashed per table: equal before and
    after means nothing was written (a new row, an update, a deleted row all change it)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    hashes: dict[str, str] = {}
    try:
        tables = MetaData()
        tables.reflect(engine)
        assert "messages" in tables.tables and "deliveries" in tables.tables
        with engine.connect() as connection:
            for table in tables.sorted_tables:
                if "_fts" in table.name or table.name in skip:  # SQLite's full-text index:
                    continue                                        # derived from messages
                rows = sorted(repr(tuple(row)) for row in
                              connection.exec_driver_sql(f'SELECT * FROM "{table.name}"'))
                digest = hashlib.sha256(f"{len(rows)}".encode())
                for row in rows:
                    digest.update(row.encode())
                hashes[table.name] = digest.hexdigest()
    finally:
        engine.dispose()
    return hashes


def check_outcomes(messages: list[dict[str, Any]]) -> None:
    """The per-message outcome the edited channel gives :data:`TRAFFIC` (as JSON dicts)."""
    by_id = {m["control_id"]: m for m in messages}
    assert [m["control_id"] for m in messages] == ["M1", "M2", "M3", "M4", "M5"]
    m1 = by_id["M1"]
    assert m1["outcome"] == "changed" and m1["stored_status"] == "SENT"
    assert "-PID|1||P1^^^HOSP^MR||SMITH^GIVEN||19800101|F" in m1["diff"]
    assert "+PID|1||P1^^^HOSP^MR||smith^GIVEN||19800101|F" in m1["diff"]
    assert not [line for line in m1["diff"][2:] if line.startswith(("-MSH", "+MSH"))]
    assert [(r["destination"], r["stored"], r["routed"]) for r in m1["routes"]] == [
        ("archive", "SENT", True), ("downstream", "SENT", True)]
    m2 = by_id["M2"]
    assert m2["outcome"] == "changed"
    downstream = m2["routes"][1]
    assert downstream["stored"] == "FILTERED" and downstream["routed"] is False
    assert "MSH-9.2 is 'A03'" in downstream["why"]
    m3 = by_id["M3"]
    assert m3["outcome"] == "newly filtered" and m3["status"] == "FILTERED"
    assert "A08" in m3["reason"] and m3["diff"] == []
    assert [(r["stored"], r["routed"]) for r in m3["routes"]] == [("SENT", None),
                                                                  ("FILTERED", None)]
    m4 = by_id["M4"]
    assert m4["outcome"] == "no longer filtered" and m4["stored_status"] == "FILTERED"
    assert "+PID|1||BLOCKED^^^HOSP^MR||lee^GIVEN||19800101|F" in m4["diff"]
    assert [(r["destination"], r["stored"], r["routed"]) for r in m4["routes"]] == [
        ("archive", None, True), ("downstream", None, True)]
    m5 = by_id["M5"]
    assert m5["outcome"] == "unchanged" and m5["diff"] == []
