"""The directory poller: atomic pickup, glob, move/delete, HL7 batch files split per message."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from tests.samples import sample
from tests.support import running_engine, wait_for

ADT = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01^ADT_A01|{id}|P|2.5\r"
       b"PID|1||PAT123^^^HOSP^MR||TESTPATIENT^ALPHA||19800101|F\r")


def adt(control_id: str) -> bytes:
    return ADT.replace(b"{id}", control_id.encode())


def file_channel(tmp_path: Path, **source: Any) -> dict[str, Any]:
    return {"name": "inbox",
            "source": {"type": "file", "directory": str(tmp_path / "in"), "glob": "*.hl7",
                       "poll_interval": "50ms", "settle": "100ms", **source},
            "destinations": [{"name": "archive", "type": "file",
                              "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")}]}


def out_ids(tmp_path: Path) -> set[str]:
    folder = tmp_path / "out"
    return {p.stem for p in folder.iterdir()} if folder.exists() else set()


def test_files_are_read_moved_and_filtered_by_glob(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "a.hl7").write_bytes(adt("A1"))
    (inbox / "b.hl7").write_bytes(adt("B1").replace(b"\r", b"\n"))  # LF files are common
    (inbox / "notes.txt").write_bytes(adt("TXT"))
    (inbox / ".hidden.hl7").write_bytes(adt("HID"))
    (inbox / "c.hl7.part").write_bytes(adt("PART"))

    async def scenario() -> None:
        async with running_engine([file_channel(tmp_path)], tmp_path) as engine:
            await wait_for(lambda: out_ids(tmp_path) == {"A1", "B1"})
            await wait_for(lambda: not (inbox / "a.hl7").exists())
            assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["a.hl7", "b.hl7"]
            assert (inbox / "processed" / "a.hl7").read_bytes() == adt("A1")
            stored = engine.store.search(control_id="B1")[0]
            assert stored.source == "file:b.hl7"
            assert engine.store.get(stored.id).raw == adt("B1").replace(b"\r", b"\n")
            # The rename convention: a temp name renamed into place is picked up.
            os.replace(inbox / "c.hl7.part", inbox / "c.hl7")
            await wait_for(lambda: "PART" in out_ids(tmp_path))
            assert (inbox / "notes.txt").exists() and (inbox / ".hidden.hl7").exists()
    asyncio.run(scenario())


def test_a_file_being_written_is_not_read_until_it_is_complete(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    message = adt("SLOW1")

    async def scenario() -> None:
        async with running_engine([file_channel(tmp_path, settle="300ms",
                                                after_read="delete")], tmp_path) as engine:
            with open(inbox / "slow.hl7", "wb") as handle:
                for i in range(0, len(message), 8):  # a slow writer, in place
                    handle.write(message[i:i + 8])
                    handle.flush()
                    await asyncio.sleep(0.03)
                    assert engine.store.search(channel="inbox") == []
            written = time.monotonic()
            await wait_for(lambda: out_ids(tmp_path) == {"SLOW1"})
            assert time.monotonic() - written >= 0.25
            assert not (inbox / "slow.hl7").exists()  # deleted
            assert not (inbox / "processed").exists()
            record = engine.store.get(engine.store.search(control_id="SLOW1")[0].id)
            assert record.raw == message  # whole, never a partial read
    asyncio.run(scenario())


def test_batch_file_is_split_and_each_message_stored_and_routed(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    batch = (b"FHS|^~\\&|REG|HOSP|||20260101\rBHS|^~\\&|REG|HOSP|||20260101\r"
             + adt("BAT1") + adt("BAT2") + adt("BAT3") + b"BTS|3\rFTS|1\r")
    (inbox / "batch.hl7").write_bytes(batch)
    (inbox / "corpus.hl7").write_bytes(sample("python-hl7/sample_file.hl7"))

    async def scenario() -> None:
        async with running_engine([file_channel(tmp_path)], tmp_path) as engine:
            await wait_for(lambda: {"BAT1", "BAT2", "BAT3"} <= out_ids(tmp_path))
            await wait_for(lambda: not (inbox / "corpus.hl7").exists())
            records = {r.control_id: r for r in engine.store.search(channel="inbox")}
            assert records["BAT2"].source == "file:batch.hl7#2"
            assert engine.store.get(records["BAT2"].id).raw == adt("BAT2")
            assert not any(r.status == "ERROR" for r in records.values())
            assert len(records) == 3 + sample("python-hl7/sample_file.hl7").count(b"MSH|")
    asyncio.run(scenario())


def test_bad_files_go_to_the_error_folder_and_the_poller_goes_on(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "1-garbage.hl7").write_bytes(b"this is not HL7")
    (inbox / "2-broken-batch.hl7").write_bytes(sample("python-hl7/sample_bad_batch.hl7"))
    (inbox / "3-good.hl7").write_bytes(adt("GOOD"))

    async def scenario() -> None:
        async with running_engine([file_channel(tmp_path)], tmp_path) as engine:
            await wait_for(lambda: out_ids(tmp_path) == {"GOOD"})
            await wait_for(lambda: len(list((inbox / "error").glob("*"))) == 2)
            errors = engine.store.search(channel="inbox", status="ERROR")
            assert len(errors) == 2
            assert sorted(p.name for p in (inbox / "error").iterdir()) == [
                "1-garbage.hl7", "2-broken-batch.hl7"]
    asyncio.run(scenario())


def test_a_batch_file_cut_short_or_miscounted_is_refused_whole(tmp_path: Path) -> None:
    """A batch whose BTS-1 count does not match, or whose FHS has no FTS (a transfer cut short),
    is not half read: the whole file goes to the error folder, kept for replay."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    head = b"FHS|^~\\&|REG|HOSP|||20260101||||F-1\rBHS|^~\\&|REG|HOSP|||20260101||||B-1\r"
    (inbox / "1-miscounted.hl7").write_bytes(head + adt("C1") + adt("C2") + b"BTS|3\rFTS|1\r")
    (inbox / "2-cut-short.hl7").write_bytes(head + adt("C3") + b"BTS|1\r")
    (inbox / "3-good.hl7").write_bytes(head + adt("C4") + b"BTS|1\rFTS|1\r")

    async def scenario() -> None:
        async with running_engine([file_channel(tmp_path)], tmp_path) as engine:
            await wait_for(lambda: out_ids(tmp_path) == {"C4"})
            await wait_for(lambda: len(list((inbox / "error").glob("*"))) == 2)
            errors = engine.store.search(channel="inbox", status="ERROR")
            assert len(errors) == 2
            reasons = sorted(engine.store.get(e.id).error or "" for e in errors)
            assert "BTS-1 says 3 messages, 2 arrived" in reasons[0] + reasons[1]
            assert "FHS without its FTS" in reasons[0] + reasons[1]
            assert not {"C1", "C2", "C3"} & {r.control_id for r in
                                             engine.store.search(channel="inbox")}
    asyncio.run(scenario())
