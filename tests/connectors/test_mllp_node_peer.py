"""npm simple-hl7's MLLP client (an independent implementation) against the MLLP source."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import engine_process, write_archive_channel

PEER = Path(__file__).parents[1] / "peers" / "node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (PEER / "node_modules" / "simple-hl7").exists(),
    reason="node or simple-hl7 missing: run `npm install` in tests/peers/node (.ci/run does)")


def test_simple_hl7_client_gets_aa_for_each_message(tmp_path: Path) -> None:
    port = write_archive_channel(tmp_path, "node", "{{ msg['MSH-10'] }}.hl7")
    messages = tmp_path / "messages.txt"
    messages.write_text("\n\n".join(
        f"MSH|^~\\&|NODE|CLINIC|CONDUIT|HOSP|20260101120000||ADT^A08|N{i}|P|2.5\n"
        f"PID|1||N{i}^^^CLINIC^MR||PEER^NODE||19700101|M" for i in range(5)))
    with engine_process(tmp_path / "channels", tmp_path / "data"):
        result = subprocess.run(["node", str(PEER / "send.js"), "127.0.0.1", str(port),
                                 str(messages)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:5] == [f"AA N{i}" for i in range(5)]


def test_simple_hl7_client_gets_commit_acks_and_table_0357_rejects(tmp_path: Path) -> None:
    """Enhanced mode (MSH-15 AL, MSH-16 NE: one commit ACK) and a header refused with AR, as an
    independent client reads them."""
    port = write_archive_channel(tmp_path, "node", "{{ msg['MSH-10'] }}.hl7")
    messages = tmp_path / "messages.txt"
    messages.write_text(
        "MSH|^~\\&|NODE|CLINIC|CONDUIT|HOSP|20260101120000||ADT^A08|E1|P|2.5|||AL|NE\n"
        "PID|1||E1^^^CLINIC^MR||PEER^NODE||19700101|M\n\n"
        "MSH|^~\\&|NODE|CLINIC|CONDUIT|HOSP|20260101120000||ADT^A08|E2|P|\n"
        "PID|1||E2^^^CLINIC^MR||PEER^NODE||19700101|M\n\n"
        "MSH|^~\\&|NODE|CLINIC|CONDUIT|HOSP|20260101120000||ADT^A08|E3|P|2.5\n"
        "PID|1||E3^^^CLINIC^MR||PEER^NODE||19700101|M")
    with engine_process(tmp_path / "channels", tmp_path / "data"):
        result = subprocess.run(["node", str(PEER / "send.js"), "127.0.0.1", str(port),
                                 str(messages)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["CA E1", "AR E2", "AA E3"]
