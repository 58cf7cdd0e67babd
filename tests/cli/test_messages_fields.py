"""`conduit messages --field NAME=VALUE`: a search field, exactly (issue 16)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from conduit.cli import main
from conduit.store import Store
from conduit.store.store import Route


def test_messages_by_search_field(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'conduit.db'}"
    store = Store(url)
    store.migrate()

    async def fill() -> None:
        for n in (1, 2):
            await store.accepted("lab", b"MSH|^~\\&|A\r", control_id=f"CTRL{n}",
                                 message_type="ORU^R01", status="TRANSFORMED",
                                 transformed=None, error=None, routes=[Route("out", b"x")],
                                 search=[("OBR-3.1", f"ACC{n}"), ("MRN", "M1")])
        await store.close()

    asyncio.run(fill())
    runner = CliRunner()

    def listed(*args: str) -> str:
        result = runner.invoke(main, ["messages", "--store-url", url, *args])
        assert result.exit_code == 0, result.output
        return result.output

    one = listed("--field", "OBR-3=ACC2")
    assert "CTRL2" in one and "CTRL1" not in one and "1 message(s)" in one
    assert "2 message(s)" in listed("--field", "MRN=M1")
    assert "1 message(s)" in listed("--field", "MRN=M1", "--field", "OBR-3.1=ACC1")
    assert "0 message(s)" in listed("--field", "OBR-3=ACC")
    bad = runner.invoke(main, ["messages", "--store-url", url, "--field", "OBR-3"])
    assert bad.exit_code == 2 and "NAME=VALUE" in bad.output
