"""The file source never delivers a cut file as good (issue 17, item 9): a writer that pauses
longer than ``settle`` leaves a file that looks complete by size and age only; done markers,
exclude patterns and rename-in make pickup exact, and an HL7 file that ends inside a segment or
whose batch trailers disagree is waited for, then kept as ERROR, never SENT."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from tests.connectors.test_file_source import adt, file_channel, out_ids
from tests.samples import sample
from tests.support import running_engine, wait_for

ORU_HEAD = (b"MSH|^~\\&|LAB|HOSP|EHR|HOSP|20260101120000||ORU^R01^ORU_R01|{id}|P|2.5\r"
            b"PID|1||PAT9^^^HOSP^MR||TESTPATIENT^BETA||19700101|M\r"
            b"OBR|1||ORD1|24331-1^Lipid panel^LN\r")


def oru(control_id: str, observations: int = 60) -> bytes:
    body = ORU_HEAD.replace(b"{id}", control_id.encode())
    for n in range(1, observations + 1):
        body += f"OBX|{n}|NM|2093-3^Cholesterol^LN||{100 + n}|mg/dL|||||F\r".encode()
    return body


def test_a_writer_pausing_longer_than_settle_is_never_delivered_cut(tmp_path: Path) -> None:
    """The drill: 609 bytes (14 of 60 OBX) written, a pause past ``settle``, then the rest."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    whole = oru("CUT1")
    cut = whole.index(b"OBX|15|") - 9  # inside OBX 14

    async def scenario() -> None:
        async with running_engine([file_channel(tmp_path, settle="100ms")], tmp_path) as engine:
            with open(inbox / "lab.hl7", "wb") as handle:
                handle.write(whole[:cut])
                handle.flush()
                await asyncio.sleep(0.8)  # 8 settle times: the settle heuristic gives in
                assert engine.store.search(channel="inbox") == []
                assert (inbox / "lab.hl7").exists()
                handle.write(whole[cut:])
            await wait_for(lambda: out_ids(tmp_path) == {"CUT1"})
            # the file is written before its delivery is recorded: wait for the record too
            await wait_for(lambda: [r.status for r in engine.store.search(control_id="CUT1")]
                           == ["SENT"])
            record = engine.store.get(engine.store.search(control_id="CUT1")[0].id)
            assert record.raw == whole
    asyncio.run(scenario())


def test_a_file_left_cut_is_an_error_kept_for_replay(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    whole = oru("CUT2")
    (inbox / "cut.hl7").write_bytes(whole[:609])

    async def scenario() -> None:
        async with running_engine([file_channel(tmp_path, incomplete_after="400ms")],
                                  tmp_path) as engine:
            await wait_for(lambda: (inbox / "error" / "cut.hl7").exists())
            [record] = engine.store.search(channel="inbox")
            assert record.status == "ERROR"
            assert "segment" in (record.error or "")
            assert engine.store.get(record.id).raw == whole[:609]
            assert out_ids(tmp_path) == set()
    asyncio.run(scenario())


def test_batch_trailers_that_disagree_are_an_error(tmp_path: Path) -> None:
    """Cut exactly at a segment boundary, a batch still tells: its trailer is missing, or
    counts other messages than it holds."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    head = b"FHS|^~\\&|REG|HOSP|||20260101\rBHS|^~\\&|REG|HOSP|||20260101\r"
    (inbox / "1-no-trailer.hl7").write_bytes(head + adt("NT1") + adt("NT2"))
    (inbox / "2-short.hl7").write_bytes(head + adt("SH1") + adt("SH2") + b"BTS|3\rFTS|1\r")
    (inbox / "3-good.hl7").write_bytes(head + adt("OK1") + adt("OK2") + b"BTS|2\rFTS|1\r")

    async def scenario() -> None:
        async with running_engine([file_channel(tmp_path, incomplete_after="300ms")],
                                  tmp_path) as engine:
            await wait_for(lambda: out_ids(tmp_path) == {"OK1", "OK2"})
            await wait_for(lambda: len(list((inbox / "error").glob("*.hl7"))) == 2)
            errors = engine.store.search(channel="inbox", status="ERROR")
            assert len(errors) == 2
            reasons = " ".join(e.error or "" for e in errors)
            assert "BTS" in reasons and "3" in reasons
            assert {r.control_id for r in engine.store.search(channel="inbox")} - {None} == {
                "OK1", "OK2"}
    asyncio.run(scenario())


def test_a_done_marker_is_waited_for_and_removed(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "a.hl7").write_bytes(adt("DM1"))

    async def scenario() -> None:
        channel = file_channel(tmp_path, settle="50ms", done_marker=".done")
        async with running_engine([channel], tmp_path):
            await asyncio.sleep(0.5)
            assert out_ids(tmp_path) == set()  # complete, but not marked done
            (inbox / "a.hl7.done").write_bytes(b"")
            await wait_for(lambda: out_ids(tmp_path) == {"DM1"})
            await wait_for(lambda: not (inbox / "a.hl7.done").exists())
            assert (inbox / "processed" / "a.hl7").exists()
            assert not (inbox / "processed" / "a.hl7.done").exists()
    asyncio.run(scenario())


def test_exclude_patterns_and_rename_in(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "b.hl7.writing").write_bytes(adt("RN1"))
    (inbox / "c.hl7").write_bytes(adt("EX1"))

    async def scenario() -> None:
        channel = file_channel(tmp_path, glob="*", exclude=["*.writing", "c.*"])
        async with running_engine([channel], tmp_path):
            await asyncio.sleep(0.5)
            assert out_ids(tmp_path) == set()
            os.replace(inbox / "b.hl7.writing", inbox / "b.hl7")
            await wait_for(lambda: out_ids(tmp_path) == {"RN1"})
            assert (inbox / "c.hl7").exists()
    asyncio.run(scenario())


def test_senders_without_a_last_terminator_can_be_allowed(tmp_path: Path) -> None:
    """Some senders end the last segment without CR (4 of the corpus's files): allowed when
    asked, with the last segment's required fields checked instead."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    raw = sample("edge-raw/microsoft-fhir-converter__ADT-A01-02.raw.hl7")
    assert not raw.endswith((b"\r", b"\n"))
    (inbox / "a.hl7").write_bytes(raw)
    cut_obx = oru("CUT3", observations=2)[:-14]  # OBX 2 without OBX-11 and the CR
    (inbox / "b.hl7").write_bytes(cut_obx)
    channel: dict[str, Any] = file_channel(tmp_path, require_final_terminator=False,
                                           incomplete_after="300ms")
    channel["destinations"][0]["path"] = str(tmp_path / "out" / "{{ id }}.hl7")

    async def scenario() -> None:
        async with running_engine([channel], tmp_path) as engine:
            await wait_for(lambda: (inbox / "error" / "b.hl7").exists())
            await wait_for(lambda: (inbox / "processed" / "a.hl7").exists())
            statuses = {r.source: r.status for r in engine.store.search(channel="inbox")}
            assert statuses["file:b.hl7"] == "ERROR"
            assert statuses["file:a.hl7"] != "ERROR"
    asyncio.run(scenario())
