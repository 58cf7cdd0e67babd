"""``enabled: false``: a channel that is validated and tested but not deployed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conduit.engine.loader import load_channels
from tests.engine.test_loader import write
from tests.support import running_engine


def channel(name: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
            "destinations": [{"name": "a", "type": "file", "path": "out/{{ id }}"}], **extra}


def test_a_disabled_channel_is_loaded_but_not_deployed(tmp_path: Path) -> None:
    async def scenario() -> None:
        channels = [channel("on", 0), channel("off", 0, enabled=False,
                                              description="off: no receiver here")]
        async with running_engine(channels, tmp_path) as engine:
            assert set(engine.runtimes) == {"on"}
            assert engine.control.state("off") == "disabled"
            assert engine.control.state("on") == "started"
    asyncio.run(scenario())


def test_a_disabled_channel_may_share_a_port_but_not_a_name(tmp_path: Path) -> None:
    write(tmp_path, "name: a\nsource: {type: mllp, port: 2575}\n"
                    "destinations: [{name: x, type: file, path: x}]\n", "a.yaml")
    write(tmp_path, "name: b\nenabled: false\nsource: {type: mllp, port: 2575}\n"
                    "destinations: [{name: x, type: file, path: x}]\n", "b.yaml")
    assert [(c.name, c.enabled) for c in load_channels([tmp_path], env={})] == [
        ("a", True), ("b", False)]
