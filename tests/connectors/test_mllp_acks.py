"""HL7 v2 chapter 2 acknowledgements at the MLLP listener, over real sockets.

Enhanced mode (MSH-15/16), commit ACKs, ACKs never acknowledged, table 0357 codes with their
locations, refusals of headers no step could route safely, and damaged batches answered with
what could be read. The ACKs are read with the test's own splitting, not Conduit's parser.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    EB,
    SB,
    MllpReceiver,
    free_port,
    mllp_exchange,
    msa,
    read_frames,
    running_engine,
    source_port,
    wait_for,
)


def hl7(control: str, *, msh9: str = "ADT^A01^ADT_A01", processing: str = "P",
        version: str = "2.5.1", accept: str = "", application: str = "") -> bytes:
    msh = ["MSH", "^~\\&", "REG", "HOSP", "ADT", "HOSP", "20260101120000", "", msh9, control,
           processing, version, "", "", accept, application]
    while msh[-1] == "" and len(msh) > 12:
        msh.pop()
    return ("|".join(msh) + "\rEVN|A01|20260101120000\r"
            "PID|1||PAT123^^^HOSP^MR||TESTPATIENT^ALPHA||19800101|F\rPV1|1|I\r").encode()


def channel(tmp_path: Path, **source: Any) -> dict[str, Any]:
    return {"name": "adt", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0, **source},
            "destinations": [{"name": "archive", "type": "file",
                              "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")}]}


def fields(ack: bytes, tag: str) -> list[str]:
    for line in ack.decode("latin-1").split("\r"):
        if line.startswith(tag):
            return line.split(line[3])
    raise AssertionError(f"no {tag} in {ack!r}")


def talk(port: int, payloads: list[bytes], expect: int) -> list[bytes]:
    """Send every payload on one connection, then read exactly ``expect`` frames (and check
    that no further frame follows within a short while)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for payload in payloads:
            sock.sendall(SB + payload + EB)
        buffer = bytearray()
        frames = []
        for _ in range(expect):
            frame = read_frames(sock, buffer)
            assert frame is not None, "connection closed early"
            frames.append(frame)
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            extra = read_frames(sock, buffer)
            raise AssertionError(f"unexpected frame {extra!r}")
    return frames


def send_until(port: int, payloads: list[bytes], last: str) -> None:
    """Send every payload on one connection and read answers until the one for ``last``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for payload in payloads:
            sock.sendall(SB + payload + EB)
        buffer = bytearray()
        while (frame := read_frames(sock, buffer)) is not None and msa(frame)[2] != last:
            pass


def run(tmp_path: Path, scenario: Any, **source: Any) -> None:
    async def main() -> None:
        async with running_engine([channel(tmp_path, **source)], tmp_path) as engine:
            await scenario(engine, source_port(engine, "adt"))
    asyncio.run(main())


# --- enhanced mode --------------------------------------------------------------------------


@pytest.mark.parametrize("accept, application, codes", [
    ("AL", "AL", ["CA", "AA"]),
    ("AL", "NE", ["CA"]),
    ("SU", "NE", ["CA"]),
    ("ER", "NE", []),
    ("NE", "AL", ["AA"]),
    ("NE", "ER", []),
    ("NE", "SU", ["AA"]),
    ("AL", "", ["CA"]),
    ("", "AL", ["AA"]),
])
def test_enhanced_mode_sends_what_msh15_and_msh16_ask_for(
        tmp_path: Path, accept: str, application: str, codes: list[str]) -> None:
    async def scenario(engine: Any, port: int) -> None:
        message = hl7("E1", accept=accept, application=application)
        # a plain message after it on the same connection: its AA must be the next frame
        frames = await asyncio.to_thread(talk, port, [message, hl7("AFTER")], len(codes) + 1)
        assert [msa(f)[1:3] for f in frames] == [[c, "E1"] for c in codes] + [["AA", "AFTER"]]
        # stored and routed whatever was answered
        assert len(engine.store.search(control_id="E1")) == 1
        await wait_for(lambda: (tmp_path / "out" / "E1.hl7").exists())
    run(tmp_path, scenario)


def test_commit_ack_mirrors_the_sender_and_comes_only_once_stored(tmp_path: Path) -> None:
    async def scenario(engine: Any, port: int) -> None:
        ca, aa = await asyncio.to_thread(talk, port, [hl7("E2", accept="AL", application="AL")],
                                         2)
        msh = fields(ca, "MSH")
        assert msh[2:6] == ["ADT", "HOSP", "REG", "HOSP"]
        assert msh[8] == "ACK^A01^ACK" and msh[11] == "2.5.1"
        assert msh[9] != fields(aa, "MSH")[9]  # two ACK messages, two control ids
        assert b"\rERR" not in ca
        assert engine.store.search(control_id="E2")
    run(tmp_path, scenario)


def test_refused_header_in_enhanced_mode_is_a_commit_reject(tmp_path: Path) -> None:
    async def scenario(engine: Any, port: int) -> None:
        [cr] = await asyncio.to_thread(
            talk, port, [hl7("E3", processing="X", accept="AL", application="AL")], 1)
        assert msa(cr)[1:3] == ["CR", "E3"]
        assert fields(cr, "ERR")[2:4] == ["MSH^1^11", "202^processing id 'X' is not in HL7 "
                                                        "table 0103^HL70357"]
        # ER: the reject goes back (an error), nothing else
        [cr] = await asyncio.to_thread(
            talk, port, [hl7("E4", version="3.0", accept="ER", application="NE")], 1)
        assert msa(cr)[1] == "CR" and fields(cr, "ERR")[3].startswith("203^")
        # NE for the commit ACK, AL for the application ACK: the reject still reaches the sender
        [ar] = await asyncio.to_thread(
            talk, port, [hl7("E5", version="3.0", accept="NE", application="AL")], 1)
        assert msa(ar)[1:3] == ["AR", "E5"]
        kept = engine.store.search(status="ERROR")
        assert len(kept) == 3  # kept for replay
    run(tmp_path, scenario)


def test_acknowledgment_type_outside_table_0155_is_refused_with_103(tmp_path: Path) -> None:
    async def scenario(engine: Any, port: int) -> None:
        [ack] = await asyncio.to_thread(talk, port, [hl7("E6", accept="XX", application="AL")],
                                        1)
        assert msa(ack)[1:3] == ["CR", "E6"]
        assert fields(ack, "ERR")[2] == "MSH^1^15"
        assert fields(ack, "ERR")[3].startswith("103^")
    run(tmp_path, scenario)


# --- ACK messages ---------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["", "AL"])
def test_an_ack_received_is_stored_and_routed_but_never_acknowledged(
        tmp_path: Path, accept: str) -> None:
    ack = (b"MSH|^~\\&|LAB|HOSP|ADT|HOSP|20260101||ACK^A01^ACK|K1|P|2.5.1|||" + accept.encode()
           + b"|" + accept.encode() + b"\rMSA|AA|MSG0001\r")

    async def scenario(engine: Any, port: int) -> None:
        [answer] = await asyncio.to_thread(talk, port, [ack, hl7("AFTER")], 1)
        assert msa(answer)[1:3] == ["AA", "AFTER"]  # the ACK got no answer
        [stored] = engine.store.search(control_id="K1")
        assert stored.status != "ERROR"
        await wait_for(lambda: (tmp_path / "out" / "K1.hl7").read_bytes() == ack
                       if (tmp_path / "out" / "K1.hl7").exists() else False)
    run(tmp_path, scenario)


# --- required header fields and table 0357 --------------------------------------------------


@pytest.mark.parametrize("field, message", [
    (9, hl7("R9", msh9="")),
    (10, hl7("")),
    (12, hl7("R12", version="")),
])
def test_message_without_msh9_msh10_or_msh12_gets_ar_101(
        tmp_path: Path, field: int, message: bytes) -> None:
    async def scenario(engine: Any, port: int) -> None:
        bad, good = await asyncio.to_thread(mllp_exchange, port, [message, hl7("OK1")])
        assert msa(bad)[1] == "AR"
        err = fields(bad, "ERR")
        assert err[2] == f"MSH^1^{field}"
        assert err[3].split("^")[0] == "101" and err[3].endswith("^HL70357")
        assert msa(good)[1:3] == ["AA", "OK1"]
        [kept] = engine.store.search(status="ERROR")
        assert engine.store.get(kept.id).raw == message
    run(tmp_path, scenario)


def test_version_before_25_names_the_field_in_err1(tmp_path: Path) -> None:
    message = hl7("", version="2.3")

    async def scenario(engine: Any, port: int) -> None:
        [bad] = await asyncio.to_thread(mllp_exchange, port, [message])
        assert msa(bad)[1] == "AR"
        assert fields(bad, "ERR")[1].startswith("MSH^1^10^101&")
    run(tmp_path, scenario)


@pytest.mark.parametrize("message, code, location, source", [
    (hl7("T1", processing="X"), "202", "MSH^1^11", {}),
    (hl7("T2", processing="T"), "202", "MSH^1^11", {"processing_ids": ["P"]}),
    (hl7("T3", version="3.0"), "203", "MSH^1^12", {}),
    (hl7("T4", msh9="ORU^R01"), "200", "MSH^1^9^^1", {"message_types": ["ADT"]}),
    (hl7("T5", msh9="ADT^A08"), "201", "MSH^1^9^^2", {"message_types": ["ADT^A01", "ORU"]}),
    (b"PID|1||X\rMSH|^~\\&|A|B|C|D|2026||ADT^A01|T6|P|2.5\r", "100", "MSH^1", {}),
    (b"MSH|^~\\&&&|A|B|C|D|2026||ADT^A01|T7|P|2.5\r", "102", "MSH^1^2", {}),
])
def test_every_nak_carries_its_table_0357_code_and_location(
        tmp_path: Path, message: bytes, code: str, location: str,
        source: dict[str, Any]) -> None:
    async def scenario(engine: Any, port: int) -> None:
        bad, good = await asyncio.to_thread(mllp_exchange, port, [message, hl7("OK2")])
        assert msa(bad)[1] == "AR"
        err = fields(bad, "ERR")
        assert err[3].split("^")[0] == code
        assert err[2] == location
        assert msa(good)[1:3] == ["AA", "OK2"]
        assert len(engine.store.search(status="ERROR")) == 1
    run(tmp_path, scenario, **source)


def test_accepted_types_and_processing_ids_still_flow(tmp_path: Path) -> None:
    async def scenario(engine: Any, port: int) -> None:
        answers = await asyncio.to_thread(mllp_exchange, port, [
            hl7("F1"), hl7("F2", msh9="ORU^R01^ORU_R01")])
        assert [msa(a)[1] for a in answers] == ["AA", "AA"]
    run(tmp_path, scenario, message_types=["ADT^A01", "ORU"], processing_ids=["P"])


def test_strict_validation_failure_is_kept_and_answered_with_its_code(tmp_path: Path) -> None:
    no_pid = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101||ADT^A01^ADT_A01|V1|P|2.5\r"
              b"EVN|A01|20260101\rPV1|1|I\r")

    async def main() -> None:
        strict = {**channel(tmp_path), "validate": "strict"}
        async with running_engine([strict], tmp_path) as engine:
            port = source_port(engine, "adt")
            [ae] = await asyncio.to_thread(talk, port, [no_pid], 1)
            assert msa(ae)[1:3] == ["AE", "V1"]
            assert fields(ae, "ERR")[3].startswith("101^Missing required child ADT_A01.PID")
            # enhanced: it is kept (CA: do not resend), the application ACK says why
            enhanced = no_pid.replace(b"|V1|P|2.5", b"|V2|P|2.5|||AL|AL")
            ca, ae = await asyncio.to_thread(talk, port, [enhanced], 2)
            assert [msa(ca)[1], msa(ae)[1]] == ["CA", "AE"]
            assert fields(ae, "ERR")[3].startswith("101^")
            assert len(engine.store.search(status="ERROR")) == 2
    asyncio.run(main())


# --- damaged batches ------------------------------------------------------------------------

BHS = b"BHS|^~\\&|REG|HOSP|ADT|HOSP|20260101||||B-42\r"
FHS = b"FHS|^~\\&|REG|HOSP|ADT|HOSP|20260101||||F-7\r"


@pytest.mark.parametrize("batch, why, location", [
    (BHS + hl7("D1") + hl7("D2"), "BHS without its BTS", "BTS^1"),
    (BHS + hl7("D1") + hl7("D2") + b"BTS|3\r", "BTS-1 says 3 messages, 2 arrived", "BTS^1^1"),
    (FHS + BHS + hl7("D1") + b"BTS|1\r", "FHS without its FTS", "FTS^1"),
    (FHS + BHS + hl7("D1") + b"BTS|1\rFTS|2\r", "FTS-1 says 2 batches, 1 arrived", "FTS^1^1"),
    (BHS + hl7("D1") + b"BTS|1\r" + BHS + hl7("D2"), "BHS without its BTS", "BTS^2"),
])
def test_damaged_batch_is_refused_whole_naming_what_could_be_read(
        tmp_path: Path, batch: bytes, why: str, location: str) -> None:
    async def scenario(engine: Any, port: int) -> None:
        answer, after = await asyncio.to_thread(mllp_exchange, port, [batch, hl7("OK3")])
        lines = [line.split("|") for line in answer.decode("latin-1").split("\r") if line]
        tags = [line[0] for line in lines]
        assert [t for t in tags if t not in ("FHS", "FTS")] == ["BHS", "MSH", "MSA", "ERR", "BTS"]
        bhs = next(line for line in lines if line[0] == "BHS")
        assert bhs[2:6] == ["ADT", "HOSP", "REG", "HOSP"] and bhs[11] == "B-42"
        if batch.startswith(b"FHS"):
            assert lines[0][0] == "FHS" and lines[0][11] == "F-7"
        assert msa(answer)[1:3] == ["AR", "B-42"]
        assert why in msa(answer)[3] or why in fields(answer, "BTS")[2]
        assert "REG at HOSP" in fields(answer, "BTS")[2]
        err = fields(answer, "ERR")
        assert err[2] == location and err[3].startswith("100^")
        # nothing of it was routed; the whole batch is kept for replay
        assert engine.store.search(control_id="D1") == []
        [kept] = engine.store.search(status="ERROR")
        assert engine.store.get(kept.id).raw == batch
        assert msa(after)[1:3] == ["AA", "OK3"]
    run(tmp_path, scenario)


def test_unreadable_batch_member_is_named_by_batch_and_position(tmp_path: Path) -> None:
    batch = (BHS + hl7("M1") + b"MSH|^~\\&&&|REG|HOSP|ADT|HOSP|2026||ADT^A01|M2|P|2.5\r"
             + hl7("M3") + b"BTS|3\r")

    async def scenario(engine: Any, port: int) -> None:
        [answer] = await asyncio.to_thread(mllp_exchange, port, [batch])
        acks = [line.split("|") for line in answer.decode("latin-1").split("\r")
                if line.startswith("MSA")]
        assert [a[1:3] for a in acks] == [["AA", "M1"], ["AR", "M2"], ["AA", "M3"]]
        assert acks[1][3].startswith("batch B-42 from REG at HOSP message 2:")
        assert fields(answer, "ERR")[2:4][0] == "MSH^1^2"
        assert fields(answer, "BHS")[11] == "B-42"
    run(tmp_path, scenario)


def test_ack_inside_a_batch_gets_no_ack_of_its_own(tmp_path: Path) -> None:
    ack = b"MSH|^~\\&|LAB|HOSP|ADT|HOSP|20260101||ACK^A01^ACK|K2|P|2.5.1\rMSA|AA|X\r"
    batch = BHS + hl7("M4") + ack + b"BTS|2\r"

    async def scenario(engine: Any, port: int) -> None:
        [answer] = await asyncio.to_thread(mllp_exchange, port, [batch])
        assert [line[:7] for line in answer.decode().split("\r") if line.startswith("MSA")] == [
            "MSA|AA|"]
        assert fields(answer, "BTS")[1] == "1"
        assert engine.store.search(control_id="K2")
    run(tmp_path, scenario)


# --- an independent peer --------------------------------------------------------------------


def test_python_hl7_mllp_send_gets_the_commit_ack(tmp_path: Path) -> None:
    """python-hl7's ``mllp_send`` command (an independent client) asks for a commit ACK only."""
    message_file = tmp_path / "message.hl7"
    message_file.write_bytes(hl7("P1", accept="AL", application="NE"))
    mllp_send = Path(sys.executable).parent / "mllp_send"

    async def scenario(engine: Any, port: int) -> None:
        done = await asyncio.to_thread(
            subprocess.run, [str(mllp_send), "--loose", "--port", str(port), "--file",
                             str(message_file),
                             "127.0.0.1"], capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr
        answer = done.stdout.replace(b"\n", b"\r")
        assert msa(answer)[1:3] == ["CA", "P1"]
        assert engine.store.search(control_id="P1")
    run(tmp_path, scenario)


# --- the MLLP destination reads what the message asked for -----------------------------------


def test_destination_to_a_chapter_2_receiver(tmp_path: Path) -> None:
    """Conduit to Conduit: the downstream listener answers as MSH-15/16 ask (CA+AA, nothing for
    NE/NE or an ACK, nothing for ER on success); the destination takes each exchange for what
    it is, the connection stays in step, and nothing waits for an ACK that will not come."""
    down_port = free_port()
    down = {"name": "down", "source": {"type": "mllp", "host": "127.0.0.1", "port": down_port},
            "destinations": [{"name": "archive", "type": "file",
                              "path": str(tmp_path / "down" / "{{ msg['MSH-10'] }}.hl7")}]}
    up = {"name": "up", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
          "destinations": [{"name": "next", "type": "mllp", "host": "127.0.0.1",
                            "port": down_port, "ack_timeout": "5s", "ack_grace": "300ms",
                            "ordered": True,
                            "retry": {"attempts": 1, "initial": "50ms", "max": "50ms"}}]}
    ack = b"MSH|^~\\&|LAB|HOSP|ADT|HOSP|20260101||ACK^A01^ACK|U3|P|2.5.1\rMSA|AA|X\r"
    sent = [hl7("U1", accept="AL", application="AL"), hl7("U2", accept="NE", application="NE"),
            ack, hl7("U4", accept="ER", application="NE"), hl7("U5")]

    async def main() -> None:
        async with running_engine([down, up], tmp_path) as engine:
            answers = await asyncio.to_thread(mllp_exchange, source_port(engine, "up"),
                                              [hl7("U0")])
            assert msa(answers[0])[1] == "AA"
            frames = await asyncio.to_thread(talk, source_port(engine, "up"), sent, 3)
            assert [msa(f)[1:3] for f in frames] == [["CA", "U1"], ["AA", "U1"], ["AA", "U5"]]
            ids = ["U1", "U2", "U3", "U4", "U5"]

            def statuses() -> list[str]:
                found = [engine.store.search(channel="up", control_id=i) for i in ids]
                return [engine.store.get(f[0].id).status if f else "-" for f in found]
            await wait_for(lambda: all(s in ("SENT", "ERROR") for s in statuses()), 20)
            assert statuses() == ["SENT"] * 5
            for i in ids:
                assert (tmp_path / "down" / f"{i}.hl7").exists()
            record = engine.store.get(engine.store.search(channel="up", control_id="U1")[0].id)
            [delivery] = record.deliveries
            assert delivery.attempts == 1
    asyncio.run(main())


def test_destination_does_not_wait_for_acks_that_are_not_asked_for(tmp_path: Path) -> None:
    """A receiver (the test's own) that answers neither an ACK message nor an NE/NE message:
    both are SENT at once, and the plain message after them gets its own AA."""
    def answer(message: bytes) -> str:
        header = message.split(b"\r", 1)[0]
        return "silent" if b"|ACK^" in header or header.endswith(b"|NE|NE") else "AA"

    ack = b"MSH|^~\\&|LAB|HOSP|ADT|HOSP|20260101||ACK^A01^ACK|S1|P|2.5.1\rMSA|AA|X\r"
    with MllpReceiver(answer) as downstream:
        up = {"name": "up", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
              "destinations": [{"name": "next", "type": "mllp", "host": "127.0.0.1",
                                "port": downstream.port, "ack_timeout": "3s", "ordered": True,
                                "retry": {"attempts": 1, "initial": "50ms", "max": "50ms"}}]}

        async def main() -> None:
            async with running_engine([up], tmp_path) as engine:
                await asyncio.to_thread(mllp_exchange, source_port(engine, "up"), [
                    hl7("S0")])
                await asyncio.to_thread(send_until, source_port(engine, "up"), [
                    ack, hl7("S2", accept="NE", application="NE"), hl7("S3")], "S3")
                await wait_for(lambda: downstream.control_ids() == ["S0", "S1", "S2", "S3"])

                def status(i: str) -> str:
                    return str(engine.store.get(
                        engine.store.search(channel="up", control_id=i)[0].id).status)
                await wait_for(lambda: status("S3") in ("SENT", "ERROR"), 10)
                assert [status(i) for i in ("S1", "S2", "S3")] == ["SENT"] * 3
        asyncio.run(main())


def test_after_delivery_commit_ack_goes_back_once_stored_before_delivery(
        tmp_path: Path) -> None:
    """With ``ack: after-delivery`` the CA means stored, so it does not wait for the receiver;
    the application ACK (the receiver's own answer) follows once delivered."""
    release = threading.Event()

    def answer(message: bytes) -> str:
        release.wait(20)
        return "AA"

    with MllpReceiver(answer) as downstream:
        chan = {"name": "adt", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0,
                                          "ack": "after-delivery"},
                "destinations": [{"name": "next", "type": "mllp", "host": "127.0.0.1",
                                  "port": downstream.port, "ack_timeout": "30s"}]}

        async def main() -> None:
            async with running_engine([chan], tmp_path) as engine:
                port = source_port(engine, "adt")

                def exchange() -> tuple[bytes, bytes]:
                    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
                        sock.sendall(SB + hl7("AD1", accept="AL", application="AL") + EB)
                        buffer = bytearray()
                        commit = read_frames(sock, buffer)
                        assert commit is not None  # while the receiver still holds it
                        release.set()  # only now may the receiver answer
                        application = read_frames(sock, buffer)
                        assert application is not None
                        return commit, application

                commit, application = await asyncio.to_thread(exchange)
                assert msa(commit)[1:3] == ["CA", "AD1"]
                assert msa(application)[1:3] == ["AA", "AD1"]
                assert fields(application, "MSH")[2] == "RECV"  # the receiver's own ACK
        try:
            asyncio.run(main())
        finally:
            release.set()
