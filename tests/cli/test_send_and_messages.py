"""`conduit run`, `conduit send` and `conduit messages` as a user runs them: real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import (
    MllpReceiver,
    engine_process,
    free_port,
    wait_until,
    write_archive_channel,
    write_channel,
)

A01 = ("MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01|{id}|P|2.5\r"
       "PID|1||{id}^^^HOSP^MR||SEND^TEST||19800101|F\r")


def conduit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "conduit", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_run_says_where_it_listens_send_prints_acks_messages_finds_them(tmp_path: Path) -> None:
    port = free_port()
    with MllpReceiver() as downstream:
        write_channel(tmp_path / "channels", {
            "name": "tour", "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
            "filter": {"all": [{"field": "MSH-9.1", "equals": "ADT"}]},
            "destinations": [{"name": "next", "type": "mllp", "host": "127.0.0.1",
                              "port": downstream.port}]})
        # One file with two messages and LF line endings, one with CRLF, one not HL7.
        batch = tmp_path / "two.hl7"
        batch.write_text((A01.format(id="T1") + "\n" + A01.format(id="T2")).replace("\r", "\n"))
        crlf = tmp_path / "crlf.hl7"
        crlf.write_bytes(A01.format(id="T3").replace("\r", "\r\n").encode())
        oru = tmp_path / "oru.hl7"
        oru.write_text(A01.format(id="T4").replace("ADT^A01", "ORU^R01"))
        env = {"CONDUIT_DATA_DIR": str(tmp_path / "data")}
        with engine_process(tmp_path / "channels", tmp_path / "data") as engine:
            assert f"channel tour listening on mllp://127.0.0.1:{port}" in "".join(engine.output)
            sent = conduit("send", f"127.0.0.1:{port}", str(batch), str(crlf), str(oru))
            assert sent.returncode == 0, sent.stdout + sent.stderr
            assert f"{batch}#1: AA T1" in sent.stdout and f"{batch}#2: AA T2" in sent.stdout
            assert f"{crlf}#1: AA T3" in sent.stdout
            assert "sent 4 messages" in sent.stdout and "4 accepted, 0 not" in sent.stdout
            wait_until(lambda: sorted(downstream.control_ids()) == ["T1", "T2", "T3"])
            wait_until(lambda: "SENT" in conduit("messages", "--control-id", "T3",
                                                 env=env).stdout)

        listed = conduit("messages", "--channel", "tour", env=env)
        assert listed.returncode == 0 and "4 message(s)" in listed.stdout
        filtered = conduit("messages", "--status", "filtered", env=env)
        # the listing shows field paths, not values, unless asked for --phi
        assert "T4" in filtered.stdout and "MSH-9.1 is …, expected 'ADT'" in filtered.stdout
        assert "'ORU'" not in filtered.stdout
        with_values = conduit("messages", "--status", "filtered", "--phi", env=env)
        assert "MSH-9.1 is 'ORU', expected 'ADT'" in with_values.stdout
        assert "1 message(s)" in conduit("messages", "--type", "ORU", env=env).stdout
        assert "0 message(s)" in conduit("messages", "--since", "2999-01-01", env=env).stdout
        assert "4 message(s)" in conduit("messages", "--since", "1h", env=env).stdout
        message_id = next(line.split()[0] for line in listed.stdout.splitlines()
                          if " T1 " in f" {line} ")
        shown = conduit("messages", "show", message_id, env=env)
        assert "-- raw --" in shown.stdout and "PID|1||T1^^^HOSP^MR" in shown.stdout
        assert "== destination next: SENT, 1 attempt(s)" in shown.stdout
        assert "MSA|AA|T1" in shown.stdout  # the receiver's ACK is kept
        assert conduit("messages", "show", "999999", env=env).returncode == 1


def test_send_exits_1_when_a_message_is_not_accepted(tmp_path: Path) -> None:
    port = write_archive_channel(tmp_path, "strict")
    junk = tmp_path / "junk.hl7"
    junk.write_text("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|J1|P|2.5\rPID|1\r")
    not_hl7 = tmp_path / "note.txt"
    not_hl7.write_text("hello")
    with engine_process(tmp_path / "channels", tmp_path / "data"):
        ok = conduit("send", f"127.0.0.1:{port}", str(junk))
        assert ok.returncode == 0, ok.stdout
        bad = conduit("send", f"127.0.0.1:{port}", str(not_hl7))
    assert "not sent, not HL7 v2" in bad.stderr
    assert bad.returncode == 1


def test_send_reads_the_acks_msh15_and_msh16_ask_for(tmp_path: Path) -> None:
    port = write_archive_channel(tmp_path, "enhanced", "{{ msg['MSH-10'] }}.hl7")
    head = "MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||{type}|{id}|P|2.5|||{accept}|{app}\r"
    body = "PID|1||{id}^^^HOSP^MR||SEND^TEST||19800101|F\r"
    files = []
    for id_, type_, accept, app in [("H1", "ADT^A01", "AL", "AL"), ("H2", "ADT^A01", "NE", "NE"),
                                    ("H3", "ACK^A01^ACK", "", ""), ("H4", "ADT^A01", "ER", "NE"),
                                    ("H5", "ADT^A01", "", "")]:
        path = tmp_path / f"{id_}.hl7"
        path.write_text(head.format(type=type_, id=id_, accept=accept, app=app)
                        + ("MSA|AA|X\r" if type_.startswith("ACK") else body.format(id=id_)))
        files.append(str(path))
    with engine_process(tmp_path / "channels", tmp_path / "data"):
        sent = conduit("send", f"127.0.0.1:{port}", *files)
        wait_until(lambda: len(list((tmp_path / "out").glob("H*.hl7"))) == 5)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    lines = [line.split(": ", 1)[1] for line in sent.stdout.splitlines() if ": " in line
             and line.startswith(str(tmp_path))]
    assert lines == ["CA H1", "AA H1", "no ACK (as MSH-15/16 ask)",
                     "sent (an ACK message is not acknowledged)", "no ACK (as MSH-15/16 ask)",
                     "AA H5"]
    assert "2 accepted, 0 not, 3 not acknowledged" in sent.stdout
