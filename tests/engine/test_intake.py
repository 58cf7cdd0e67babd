"""One intake path: each message is parsed once and, with ``validate: strict``, validated once,
off the event loop, whether the listener runs the pipeline itself or a worker does."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from conduit.hl7 import strict
from conduit.hl7.message import Message
from tests.ops.helpers import adt, file_channel
from tests.support import mllp_exchange, msa, running_engine, source_port, wait_for


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Counts Message.parse and strict validation calls, and the threads validation ran on."""
    seen: dict[str, Any] = {"parse": 0, "validate": 0, "threads": set()}
    parse, validate = Message.parse.__func__, strict.validate_strict  # type: ignore[attr-defined]

    def counting_parse(cls: type[Message], raw: bytes, *args: Any, **kwargs: Any) -> Message:
        seen["parse"] += 1
        return parse(cls, raw, *args, **kwargs)  # type: ignore[no-any-return]

    def counting_validate(message: Message) -> list[str]:
        seen["validate"] += 1
        seen["threads"].add(threading.get_ident())
        return validate(message)

    monkeypatch.setattr(Message, "parse", classmethod(counting_parse))
    monkeypatch.setattr(strict, "validate_strict", counting_validate)
    return seen


@pytest.mark.parametrize("stopped", [False, True], ids=["inline", "queued-for-workers"])
def test_each_message_is_parsed_and_validated_once_off_the_loop(
        tmp_path: Path, counted: dict[str, Any], stopped: bool) -> None:
    async def scenario() -> None:
        channel = file_channel(tmp_path, validate="strict")
        async with running_engine([channel], tmp_path) as engine:
            loop_thread = threading.get_ident()
            if stopped:  # the workers hold: the listener stores the raw message and queues it
                engine.control.buses["adt"].gate.clear()
            counted.update(parse=0, validate=0, threads=set())
            answers = await asyncio.to_thread(mllp_exchange, source_port(engine, "adt"),
                                              [adt("ONE"), adt("TWO")])
            assert [msa(a)[1] for a in answers] == ["AA", "AA"]
            if stopped:
                engine.control.buses["adt"].gate.set()
            await wait_for(lambda: engine.store.counts()["adt"].get("SENT") == 2)
            assert counted["parse"] == 2
            assert counted["validate"] == 2
            assert loop_thread not in counted["threads"]

    asyncio.run(scenario())
