"""What arrives is what leaves (issue 14, item 3): MLLP in -> file and MLLP out, byte for byte.

A message no transform step changed is forwarded as the bytes received: its segment ends (CR,
CRLF, LF), a bare LF inside a field, a missing final CR are the sender's and stay so. A step that
changes the message re-writes it, and only what the step changed differs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support import MllpReceiver, mllp_exchange, msa, running_engine, source_port, wait_for

ORU = (b"MSH|^~\\&|LAB|HOSP|EHR|HOSP|20260102080000||ORU^R01^ORU_R01|{id}|P|2.5.1\r"
       b"PID|1||MRN7^^^HOSP^MR||DOE^JANE||19800101|F\r"
       b"OBR|1||F1^LAB|11502-2^Report^LN\r"
       b"OBX|1|TX|11502-2^Report^LN||first line\nsecond line\nPID|looks like a segment"
       b"||||||F\r")


def channel(tmp_path: Path, downstream: int, transform: list[Any] | None = None) -> dict[str, Any]:
    return {"name": "lab", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
            "transform": transform or [],
            "destinations": [
                {"name": "archive", "type": "file",
                 "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")},
                {"name": "downstream", "type": "mllp", "host": "127.0.0.1", "port": downstream,
                 "ack_timeout": "2s"}]}


def files(folder: Path) -> list[Path]:
    """The files written (not a write still under way, which is a hidden temporary file)."""
    return [p for p in folder.glob("*.hl7") if not p.name.startswith(".")] \
        if folder.is_dir() else []


def run(tmp_path: Path, messages: list[bytes],
        transform: list[Any] | None = None) -> tuple[dict[str, bytes], list[bytes]]:
    """Send ``messages``; answer what the file destination wrote (by control id) and what the
    downstream MLLP peer received."""
    async def scenario() -> tuple[dict[str, bytes], list[bytes]]:
        with MllpReceiver() as downstream:
            async with running_engine([channel(tmp_path, downstream.port, transform)],
                                      tmp_path) as engine:
                answers = await asyncio.to_thread(
                    mllp_exchange, source_port(engine, "lab"), messages)
                assert [msa(a)[1] for a in answers] == ["AA"] * len(messages)
                await wait_for(lambda: len(downstream.messages) == len(messages))
                folder = tmp_path / "out"
                await wait_for(lambda: len(files(folder)) == len(messages))
                written = {p.stem: p.read_bytes() for p in files(folder)}
                return written, list(downstream.messages)
    return asyncio.run(scenario())


@pytest.mark.parametrize("shape", ["cr", "crlf", "lf", "no-final-cr"])
def test_unchanged_message_leaves_as_the_bytes_received(tmp_path: Path, shape: str) -> None:
    sent = ORU.replace(b"{id}", shape.encode())
    if shape == "crlf":
        sent = sent.replace(b"\n", b" ").replace(b"\r", b"\r\n")
    elif shape == "lf":
        sent = sent.replace(b"\n", b" ").replace(b"\r", b"\n")
    elif shape == "no-final-cr":
        sent = sent.removesuffix(b"\r")
    written, forwarded = run(tmp_path, [sent])
    assert written == {shape: sent}
    assert forwarded == [sent]


def test_a_changed_message_keeps_the_lf_inside_its_field(tmp_path: Path) -> None:
    sent = ORU.replace(b"{id}", b"T1")
    written, forwarded = run(tmp_path, [sent],
                             [{"set": {"field": "MSH-5", "value": "ARCHIVE"}}])
    expected = sent.replace(b"|EHR|", b"|ARCHIVE|")
    assert written == {"T1": expected}
    assert forwarded == [expected]
