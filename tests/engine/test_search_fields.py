"""Search fields at intake (issue 16): written with the message, whichever process takes it,
and the channel's `search:` key."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from conduit.core.errors import HL7ParseError
from conduit.engine.channel import channel_model
from conduit.engine.search import STANDARD, search_fields
from conduit.hl7.message import Message
from tests.ops.helpers import file_channel
from tests.samples import corpus_files
from tests.support import mllp_exchange, msa, running_engine, source_port, wait_for

ORU = (b"MSH|^~\\&|LAB|HOSP|EHR|HOSP|20260101120000||ORU^R01|{id}|P|2.5\r"
       b"PID|1||V77^^^VISIT^VN~{mrn}^^^HOSP^MR||DOE^JANE||19800101|F\r"
       b"PV1|1|O|CLINIC^7\r"
       b"ORC|RE|ORD{n}|FIL{n}\rOBR|1|ORD{n}|ACC{n}^LAB|GLU^Glucose\rOBX|1|NM|GLU||5.5\r")


def _oru(n: int, mrn: str = "M100") -> bytes:
    return (ORU.replace(b"{id}", f"C{n}".encode()).replace(b"{n}", str(n).encode())
            .replace(b"{mrn}", mrn.encode()))


def test_the_standard_set_and_the_named_fields() -> None:
    found = dict(search_fields(Message.parse(_oru(5)), ["PV1-3.1", "OBR-4"]))
    assert found == {"PID-3.4": "VISIT", "PID-5.1": "DOE", "PID-5.2": "JANE", "MRN": "M100",
                     "ORC-2.1": "ORD5", "ORC-3.1": "FIL5", "OBR-2.1": "ORD5",
                     "OBR-3.1": "ACC5", "PV1-3.1": "CLINIC", "OBR-4": "GLU^Glucose"}


@pytest.mark.parametrize("stopped", [False, True], ids=["inline", "queued-for-workers"])
def test_search_fields_are_written_at_intake_and_found(tmp_path: Path, stopped: bool) -> None:
    async def scenario() -> None:
        channel = file_channel(tmp_path, name="lab", search={"fields": ["PV1-3.1"]})
        async with running_engine([channel], tmp_path) as engine:
            if stopped:  # the listener stores the raw message and queues it for the workers
                engine.control.buses["lab"].gate.clear()
            answers = await asyncio.to_thread(mllp_exchange, source_port(engine, "lab"),
                                              [_oru(1), _oru(2, mrn="M200")])
            assert [msa(a)[1] for a in answers] == ["AA", "AA"]
            if stopped:
                engine.control.buses["lab"].gate.set()
            await wait_for(lambda: engine.store.counts()["lab"].get("SENT") == 2)
            store = engine.store

            def found(*pairs: tuple[str, str]) -> list[str | None]:
                return [r.control_id for r in store.search(fields=list(pairs))]

            assert found(("OBR-3", "ACC1")) == ["C1"]
            assert found(("MRN", "M200")) == ["C2"]
            assert found(("PID-5.1", "DOE"), ("ORC-2", "ORD2")) == ["C2"]
            assert found(("PV1-3.1", "CLINIC")) == ["C2", "C1"]
            assert found(("OBR-3", "ACC3")) == []
            assert store.full_text_channels == set()  # full text is opt-in

    asyncio.run(scenario())


def test_the_channel_search_key() -> None:
    model = channel_model()
    base: dict[str, Any] = {"name": "lab", "source": {"type": "mllp", "port": 0},
                            "destinations": [{"name": "f", "type": "file", "path": "x"}]}
    default = model.model_validate(base)
    assert default.search.fields == [] and default.search.full_text is False
    chosen = model.model_validate({**base, "search": {"fields": ["OBR-3"], "full_text": True}})
    assert chosen.search.fields == ["OBR-3"] and chosen.search.full_text
    with pytest.raises(ValidationError, match="invalid HL7 path"):
        model.model_validate({**base, "search": {"fields": ["not a path"]}})
    with pytest.raises(ValidationError, match="search fields are HL7 v2 paths"):
        model.model_validate({**base, "data_type": "json", "search": {"fields": ["PID-3"]}})
    with pytest.raises(ValidationError):
        model.model_validate({**base, "search": {"fulltext": True}})


def _by_get(message: Message, named: list[str]) -> list[tuple[str, str]]:
    """The definition: each path read with ``Message.get``, the MRN from ``repetitions``."""
    found = [(name, message.get(path)) for name, path in STANDARD]
    mrn = ""
    for repetition in message.repetitions("PID-3"):
        parts = repetition.split(message.separators.component) if repetition else []
        if len(parts) > 4 and parts[4] == "MR":
            mrn = parts[0]
            break
    found.append(("MRN", mrn))
    found.extend((path, message.get(path)) for path in named)
    return [(name, value) for name, value in found if value]


def test_search_fields_read_what_message_get_reads() -> None:
    """Each segment is looked up once: the same values as a ``Message.get`` per path, on the
    whole corpus (messages without PID, ORC or OBR, repeated OBRs, other separators, no MR)
    and on edge cases."""
    named = ["PV1-19", "OBR-4.1", "OBX[2]-5", "PID-3"]
    edge = [b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1||^^^^MR~X7^^^H^MR|||\r",
            b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID\rOBR|1|\rOBR|2|O2|A2\r",
            b"MSH#^~\\&#A#B#C#D#20260101##ORM^O01#1#P#2.5\rORC#NW#P1^X#F1\rPID#1##9^^^^MR\r"]
    messages = edge
    for path in corpus_files():
        for part in path.read_bytes().replace(b"\n", b"\r").split(b"\rMSH")[:3]:
            messages.append(part if part.startswith(b"MSH") else b"MSH" + part)
    checked = 0
    for raw in messages:
        try:
            message = Message.parse(raw)
        except HL7ParseError:
            continue
        assert search_fields(message, named) == _by_get(Message.parse(raw), named), raw[:60]
        checked += 1
    assert checked > 100
