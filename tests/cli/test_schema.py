"""``conduit schema`` and the committed channel.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from conduit.cli import main
from conduit.engine.schema import SCHEMA_FILE, channel_schema, schema_text


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "channel.schema.json is stale: run "
        "`conduit schema -o conduit/engine/schema/channel.schema.json`")


def test_schema_describes_the_contract() -> None:
    schema = channel_schema()
    assert schema["additionalProperties"] is False
    assert {"name", "description", "source", "validate", "filter", "transform",
            "destinations"} <= set(schema["properties"])
    assert set(schema["required"]) == {"name", "source", "destinations"}
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name
    members = schema["properties"]["transform"]["items"]["oneOf"]
    steps = {ref["$ref"].rsplit("/", 1)[1] for ref in members}
    assert {"SetStep", "CopyStep", "DeleteStep", "TemplateStep"} <= steps


def test_schema_command_prints_and_writes(tmp_path: Path) -> None:
    printed = CliRunner().invoke(main, ["schema"])
    assert printed.exit_code == 0
    assert json.loads(printed.stdout) == channel_schema()
    target = tmp_path / "sub" / "channel.schema.json"
    written = CliRunner().invoke(main, ["schema", "-o", str(target)])
    assert written.exit_code == 0
    assert target.read_text(encoding="utf-8") == schema_text()
