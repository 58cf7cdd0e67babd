"""The MLLP source and destination over real sockets, with independent peers."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import hl7.client
import pytest

from tests.support import (
    EB,
    SB,
    MllpReceiver,
    control_id,
    mllp_exchange,
    msa,
    running_engine,
    source_port,
    wait_for,
)

ADT = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01^ADT_A01|MSG0001|P|2.5"
       b"|||||||UNICODE UTF-8\r"
       b"EVN|A01|20260101120000\r"
       b"PID|1||PAT123^^^HOSP^MR||TESTPATIENT^ALPHA||19800101|F\r"
       b"PV1|1|I|WARD^101^1\r")


def with_id(message: bytes, new_id: str) -> bytes:
    return message.replace(b"|MSG0001|", f"|{new_id}|".encode())


def channel(downstream_port: int | None, tmp_path: Path, **source: Any) -> dict[str, Any]:
    destinations: list[dict[str, Any]] = [
        {"name": "archive", "type": "file",
         "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")}]
    if downstream_port:
        destinations.append({"name": "downstream", "type": "mllp", "host": "127.0.0.1",
                             "port": downstream_port, "ack_timeout": "2s",
                             "retry": {"attempts": 3, "initial": "50ms", "max": "100ms"}})
    return {"name": "adt", "source": {"type": "mllp", "host": "127.0.0.1", "port": 0, **source},
            "filter": {"all": [{"field": "MSH-9.1", "equals": "ADT"}]},
            "destinations": destinations}


def test_real_client_gets_aa_only_after_commit_and_message_flows(tmp_path: Path) -> None:
    with MllpReceiver() as downstream:
        async def scenario() -> None:
            async with running_engine([channel(downstream.port, tmp_path)], tmp_path) as engine:
                port = source_port(engine, "adt")
                # python-hl7's MLLP client is the independent sender.
                def send() -> bytes:
                    with hl7.client.MLLPClient("127.0.0.1", port) as client:
                        return bytes(client.send_message(ADT))
                answer = await asyncio.to_thread(send)
                fields = msa(answer.strip(SB + EB))
                assert fields[1:3] == ["AA", "MSG0001"]
                # When AA arrives the message is already in the store.
                stored = engine.store.search(control_id="MSG0001")
                assert len(stored) == 1
                await wait_for(lambda: downstream.control_ids() == ["MSG0001"])
                await wait_for(lambda: engine.store.get(stored[0].id).status == "SENT")
                record = engine.store.get(stored[0].id)
                assert record.raw == ADT
                assert {d.destination: d.status for d in record.deliveries} == {
                    "archive": "SENT", "downstream": "SENT"}
                assert (tmp_path / "out" / "MSG0001.hl7").read_bytes() == ADT
        asyncio.run(scenario())


def test_ack_header_mirrors_the_sender(tmp_path: Path) -> None:
    message = (b"MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20260101||ADT^A04|X42|P|2.3.1|||||"
               b"|8859/1\rPID|1||9^^^H||M\xfcLLER^ANNA\r")

    async def scenario() -> None:
        async with running_engine([channel(None, tmp_path)], tmp_path) as engine:
            [ack] = await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [message])
            msh = ack.split(b"\r")[0].decode("latin-1").split("|")
            assert msh[2:6] == ["RECVAPP", "RECVFAC", "SENDAPP", "SENDFAC"]
            assert msh[1] == "^~\\&"
            assert msh[11] == "2.3.1"
            assert msh[17] == "8859/1"
            assert msa(ack)[1:3] == ["AA", "X42"]
            stored = engine.store.search(control_id="X42")[0]
            assert engine.store.get(stored.id).raw == message  # bytes kept as sent
    asyncio.run(scenario())


def test_many_messages_per_connection_and_many_connections(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([channel(None, tmp_path)], tmp_path) as engine:
            port = source_port(engine, "adt")

            def client(n: int) -> list[bytes]:
                return mllp_exchange(port, [with_id(ADT, f"C{n}M{i}") for i in range(20)])

            answers = await asyncio.gather(*[asyncio.to_thread(client, n) for n in range(10)])
            for n, acks in enumerate(answers):
                assert [msa(a)[2] for a in acks] == [f"C{n}M{i}" for i in range(20)]
                assert all(msa(a)[1] == "AA" for a in acks)
            assert sum(engine.store.counts()["adt"].values()) == 200
    asyncio.run(scenario())


@pytest.mark.parametrize("payload, why", [
    (b"this is not hl7 at all", "no MSH"),
    (b"PID|1||123\rMSH|^~\\&|A\r", "MSH not first"),
    (b"MSH", "too short"),
    (b"\x00\x01\x02\xff\xfe binary", "binary"),
])
def test_malformed_input_is_answered_ar_stored_and_listener_goes_on(
        tmp_path: Path, payload: bytes, why: str) -> None:
    async def scenario() -> None:
        async with running_engine([channel(None, tmp_path)], tmp_path) as engine:
            port = source_port(engine, "adt")
            bad, good = await asyncio.to_thread(mllp_exchange, port, [payload, ADT])
            assert msa(bad)[1] == "AR", why
            assert b"\rERR|" in bad
            assert msa(good)[1:3] == ["AA", "MSG0001"]
            errors = engine.store.search(status="ERROR")
            assert len(errors) == 1 and errors[0].error
            assert engine.store.get(errors[0].id).raw == payload
    asyncio.run(scenario())


def test_bad_framing_is_naked_and_the_connection_goes_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([channel(None, tmp_path)], tmp_path) as engine:
            port = source_port(engine, "adt")

            def exchange() -> tuple[bytes, bytes]:
                from tests.support import read_frames
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    buffer = bytearray()
                    sock.sendall(b"garbage without a start block" + EB)
                    first = read_frames(sock, buffer)
                    sock.sendall(SB + ADT + EB)
                    second = read_frames(sock, buffer)
                    assert first is not None and second is not None
                    return first, second

            first, second = await asyncio.to_thread(exchange)
            assert msa(first)[1] == "AR"
            assert msa(second)[1:3] == ["AA", "MSG0001"]
    asyncio.run(scenario())


def test_ten_megabyte_message_and_the_configured_maximum(tmp_path: Path) -> None:
    note = b"A" * (10 * 1024 * 1024)
    big = ADT + b"OBX|1|TX|NOTE||" + note + b"\r"
    huge = ADT + b"OBX|1|TX|NOTE||" + note + note + b"\r"

    async def scenario() -> None:
        src = {"max_message_bytes": 15 * 1024 * 1024}
        async with running_engine([channel(None, tmp_path, **src)], tmp_path) as engine:
            port = source_port(engine, "adt")
            ok, too_big, after = await asyncio.to_thread(
                mllp_exchange, port, [big, huge, with_id(ADT, "AFTER")], 60)
            assert msa(ok)[1:3] == ["AA", "MSG0001"]
            assert msa(too_big)[1] == "AR"
            assert msa(after)[1:3] == ["AA", "AFTER"]
            stored = engine.store.search(control_id="MSG0001")[0]
            assert engine.store.get(stored.id).raw == big
    asyncio.run(scenario())


def test_idle_connections_are_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([channel(None, tmp_path, idle_timeout="200ms")],
                                  tmp_path) as engine:
            reader, writer = await asyncio.open_connection("127.0.0.1",
                                                           source_port(engine, "adt"))
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            writer.close()
    asyncio.run(scenario())


def test_filtered_message_is_still_acknowledged(tmp_path: Path) -> None:
    oru = ADT.replace(b"ADT^A01^ADT_A01", b"ORU^R01")

    async def scenario() -> None:
        async with running_engine([channel(None, tmp_path)], tmp_path) as engine:
            [ack] = await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [oru])
            assert msa(ack)[1] == "AA"
            stored = engine.store.search(control_id="MSG0001")[0]
            await wait_for(lambda: engine.store.get(stored.id).status == "FILTERED")
            assert not (tmp_path / "out").exists()
    asyncio.run(scenario())


@pytest.mark.parametrize("answers, status, attempts", [
    (["AE", "AA"], "SENT", 2),    # AE is retried
    (["AR"], "ERROR", 1),          # AR is final
    (["AE", "AE", "AE"], "ERROR", 3),
])
def test_destination_ack_codes(tmp_path: Path, answers: list[str], status: str,
                               attempts: int) -> None:
    queue = list(answers)
    with MllpReceiver(answer=lambda m: queue.pop(0) if queue else "AA") as downstream:
        async def scenario() -> None:
            async with running_engine([channel(downstream.port, tmp_path)], tmp_path) as engine:
                await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [ADT])
                mid = engine.store.search(control_id="MSG0001")[0].id

                def done() -> bool:
                    record = engine.store.get(mid)
                    return record is not None and record.status in ("SENT", "ERROR")

                await wait_for(done)
                record = engine.store.get(mid)
                delivery = {d.destination: d for d in record.deliveries}["downstream"]
                assert (delivery.status, delivery.attempts) == (status, attempts)
                assert record.status == status
                if status == "ERROR":
                    assert "answered A" in (delivery.error or "")
                    assert delivery.response and b"MSA|A" in delivery.response
        asyncio.run(scenario())


def test_destination_retries_a_receiver_that_was_down(tmp_path: Path) -> None:
    from tests.support import free_port

    port = free_port()

    async def scenario() -> None:
        ch = channel(port, tmp_path)
        ch["destinations"][1]["retry"] = {"attempts": 20, "initial": "100ms", "max": "200ms"}
        async with running_engine([ch], tmp_path) as engine:
            await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [ADT])
            await asyncio.sleep(0.5)  # a few refused connections
            with MllpReceiver(port=port) as downstream:
                await wait_for(lambda: downstream.control_ids() == ["MSG0001"], 10)
                mid = engine.store.search(control_id="MSG0001")[0].id
                await wait_for(lambda: engine.store.get(mid).status == "SENT")
                attempts = {d.destination: d.attempts
                            for d in engine.store.get(mid).deliveries}["downstream"]
                assert attempts > 1
    asyncio.run(scenario())


def test_destination_rejects_an_ack_for_another_message(tmp_path: Path) -> None:
    # A receiver that answers with the wrong MSA-2 is not counted as a delivery.
    import socketserver
    import threading

    class Liar(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            from tests.support import ack_for, read_frames
            buffer = bytearray()
            while (message := read_frames(self.request, buffer)) is not None:
                self.request.sendall(SB + ack_for(message.replace(
                    control_id(message).encode(), b"OTHER")) + EB)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Liar)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        async def scenario() -> None:
            ch = channel(int(server.server_address[1]), tmp_path)
            async with running_engine([ch], tmp_path) as engine:
                await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [ADT])
                mid = engine.store.search(control_id="MSG0001")[0].id
                await wait_for(lambda: engine.store.get(mid).status == "ERROR")
                delivery = {d.destination: d for d in engine.store.get(mid).deliveries}
                assert "expected 'MSG0001'" in (delivery["downstream"].error or "")
        asyncio.run(scenario())
    finally:
        server.shutdown()
        server.server_close()


def test_after_delivery_passes_the_receivers_answer_back(tmp_path: Path) -> None:
    with MllpReceiver(answer=lambda m: "AR") as downstream:
        async def scenario() -> None:
            ch = channel(downstream.port, tmp_path, ack="after-delivery")
            ch["destinations"] = ch["destinations"][1:]
            async with running_engine([ch], tmp_path) as engine:
                [ack] = await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [ADT])
                assert msa(ack)[1] in ("AE", "AR")
        asyncio.run(scenario())
    with MllpReceiver() as downstream:
        async def accepted() -> None:
            ch = channel(downstream.port, tmp_path, ack="after-delivery")
            ch["destinations"] = ch["destinations"][1:]
            async with running_engine([ch], tmp_path) as engine:
                [ack] = await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"), [ADT])
                assert msa(ack)[1:3] == ["AA", "MSG0001"]
                assert downstream.control_ids() == ["MSG0001"]  # delivered before the answer
        asyncio.run(accepted())
