"""MLLP frames holding HL7 batches (split, stored per message, batch ACK) and MLLP over TLS /
mutual TLS, with certificates made at test time; peers are raw sockets and the stdlib ssl."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest

from conduit.connectors.base import ConnectorContext
from conduit.connectors.mllp import MllpDestination, MllpDestinationConfig
from conduit.core.errors import RetryableError
from conduit.core.protocols import Outbound
from tests.connectors.peers import make_certs, server_context
from tests.support import (
    EB,
    SB,
    ack_for,
    mllp_exchange,
    msa,
    read_frames,
    running_engine,
    wait_for,
)
from tests.support import source_port as port_of

ADT = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01^ADT_A01|{id}|P|2.5\r"
       b"PID|1||PAT123^^^HOSP^MR||TESTPATIENT^ALPHA||19800101|F\r")


def adt(control_id: str) -> bytes:
    return ADT.replace(b"{id}", control_id.encode())


def channel(tmp_path: Path, **source: Any) -> dict[str, Any]:
    return {"name": "adt",
            "source": {"type": "mllp", "host": "127.0.0.1", "port": 0, **source},
            "destinations": [{"name": "archive", "type": "file",
                              "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")}]}


def segments(answer: bytes) -> list[list[str]]:
    return [line.split("|") for line in answer.decode("latin-1").split("\r") if line]


def test_batch_in_one_frame_is_split_stored_per_message_and_batch_acked(tmp_path: Path) -> None:
    batch = (b"FHS|^~\\&|REG|HOSP|ADT|HOSP|20260101||||F-77\r"
             b"BHS|^~\\&|REG|HOSP|ADT|HOSP|20260101||||B-42\r"
             + adt("M1") + b"this is not a segment\r" + adt("M2") + adt("M3")
             + b"BTS|3\rFTS|1\r")

    async def scenario() -> None:
        async with running_engine([channel(tmp_path)], tmp_path) as engine:
            [answer] = await asyncio.to_thread(mllp_exchange, port_of(engine, "adt"), [batch])
            lines = segments(answer)
            tags = [line[0] for line in lines]
            assert tags == ["FHS", "BHS", "MSH", "MSA", "MSH", "MSA", "MSH", "MSA", "BTS", "FTS"]
            fhs, bhs = lines[0], lines[1]
            assert fhs[2:6] == ["ADT", "HOSP", "REG", "HOSP"] and fhs[11] == "F-77"
            assert bhs[2:6] == ["ADT", "HOSP", "REG", "HOSP"] and bhs[11] == "B-42"
            assert [line[1:3] for line in lines if line[0] == "MSA"] == [
                ["AA", "M1"], ["AA", "M2"], ["AA", "M3"]]
            assert lines[-2][:2] == ["BTS", "3"]
            # Every message was durable before the batch ACK, each its own row.
            records = {r.control_id: r for r in engine.store.search(channel="adt")}
            assert set(records) == {"M1", "M2", "M3"}
            # (the odd line belongs to M1, as in any HL7 message: kept byte for byte)
            assert engine.store.get(records["M1"].id).raw == adt("M1") + b"this is not a segment\r"
            assert engine.store.get(records["M2"].id).raw == adt("M2")
            await wait_for(lambda: len(list((tmp_path / "out").glob("*.hl7"))) == 3)
    asyncio.run(scenario())


def test_bare_messages_in_one_frame_get_their_acks_and_bad_batches_ar(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([channel(tmp_path)], tmp_path) as engine:
            port = port_of(engine, "adt")
            [answer] = await asyncio.to_thread(mllp_exchange, port, [adt("N1") + adt("N2")])
            assert [line[1:3] for line in segments(answer) if line[0] == "MSA"] == [
                ["AA", "N1"], ["AA", "N2"]]
            broken = b"BHS|^~\\&|REG\rPID|1||X\r" + adt("N3") + b"BTS|1\r"
            answer, after = await asyncio.to_thread(mllp_exchange, port, [broken, adt("N4")])
            assert engine.store.search(control_id="N3") == []
            assert len(engine.store.search(channel="adt", status="ERROR")) == 1
            assert msa(answer)[1] == "AR"
            assert msa(after)[1:3] == ["AA", "N4"]  # the connection goes on
    asyncio.run(scenario())


def test_batches_not_split_when_switched_off(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_engine([channel(tmp_path, split_batches=False)], tmp_path) as engine:
            [answer] = await asyncio.to_thread(mllp_exchange, port_of(engine, "adt"),
                                               [adt("S1") + adt("S2")])
            assert msa(answer)[1:3] == ["AA", "S1"]
            assert len(engine.store.search(channel="adt")) == 1
    asyncio.run(scenario())


def tls_exchange(port: int, payload: bytes, context: ssl.SSLContext) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(SB + payload + EB)
        answer = read_frames(sock, bytearray())
        assert answer is not None
        return answer


def test_mllp_listener_over_mutual_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    config = channel(tmp_path, tls={"cert": str(certs.server_cert), "key": str(certs.server_key),
                                    "client_ca": str(certs.ca), "require_client_cert": True})

    def context(cert: Path | None, key: Path | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(certs.ca))
        if cert and key:
            ctx.load_cert_chain(cert, key)
        return ctx

    async def scenario() -> None:
        async with running_engine([config], tmp_path) as engine:
            port = port_of(engine, "adt")
            assert engine.runtimes["adt"].source.describe().startswith("mllps://")
            answer = await asyncio.to_thread(tls_exchange, port, adt("T1"),
                                             context(certs.client_cert, certs.client_key))
            assert msa(answer)[1:3] == ["AA", "T1"]
            for cert, key in [(None, None), (certs.rogue_cert, certs.rogue_key)]:
                with pytest.raises((ssl.SSLError, ConnectionError, AssertionError)):
                    await asyncio.to_thread(tls_exchange, port, adt("T2"), context(cert, key))
            # Plain MLLP on a TLS port gets nothing stored either.
            with pytest.raises((ConnectionError, AssertionError, OSError)):
                await asyncio.to_thread(mllp_exchange, port, [adt("T3")], 2.0)
            assert [r.control_id for r in engine.store.search(channel="adt")] == ["T1"]
    asyncio.run(scenario())


class TlsMllpReceiver:
    """A downstream MLLP-over-TLS system (stdlib ssl), answering AA to each frame."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.context = context
        self.messages: list[bytes] = []
        self.peer_certs: list[dict[str, Any] | None] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(raw, server_side=True) as conn:
                    self.peer_certs.append(conn.getpeercert())
                    buffer = bytearray()
                    while (message := read_frames(conn, buffer)) is not None:
                        self.messages.append(message)
                        conn.sendall(SB + ack_for(message) + EB)
            except (ssl.SSLError, OSError):
                continue

    def close(self) -> None:
        self.sock.close()


def test_mllp_sender_with_custom_ca_and_client_certificate(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    receiver = TlsMllpReceiver(server_context(certs, require_client=True))

    def sender(**tls: Any) -> MllpDestination:
        return MllpDestination(MllpDestinationConfig(
            name="d", type="mllp", host="localhost", port=receiver.port, ack_timeout="3s",
            connect_timeout="3s", tls=tls or None), ConnectorContext("c", tmp_path))

    async def scenario() -> None:
        good = sender(ca=str(certs.ca), cert=str(certs.client_cert), key=str(certs.client_key))
        answer = await good.send(Outbound(1, "c", "d", adt("TLS1")))
        assert msa(answer)[1:3] == ["AA", "TLS1"]
        assert receiver.peer_certs[-1] is not None  # the receiver saw our client certificate
        await good.close()
        no_client_cert = sender(ca=str(certs.ca))
        with pytest.raises(RetryableError):
            await no_client_cert.send(Outbound(2, "c", "d", adt("TLS2")))
        untrusted = sender(cert=str(certs.client_cert), key=str(certs.client_key))
        with pytest.raises(RetryableError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.send(Outbound(3, "c", "d", adt("TLS3")))
        assert [m[-40:] for m in receiver.messages] == [adt("TLS1")[-40:]]

    try:
        asyncio.run(scenario())
    finally:
        receiver.close()
