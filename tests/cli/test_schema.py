"""``conduit schema``, the committed channel.schema.json and the README's generated tables."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from conduit.cli import main
from conduit.engine.schema import SCHEMA_FILE, channel_schema, schema_text, with_readme_tables

README = Path(__file__).parents[2] / "README.md"


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "channel.schema.json is stale: run "
        "`conduit schema -o conduit/engine/schema/channel.schema.json`")


def test_readme_tables_are_up_to_date() -> None:
    text = README.read_text(encoding="utf-8")
    assert with_readme_tables(text) == text, (
        "the README's connector or step table is stale: run `conduit schema --readme README.md`")


def test_readme_command_rewrites_only_the_tables(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- registry:connectors -->\nold\n<!-- /registry:connectors -->"
                      "\n\nkept\n<!-- registry:steps -->\n<!-- /registry:steps -->\n",
                      encoding="utf-8")
    result = CliRunner().invoke(main, ["schema", "--readme", str(readme)])
    assert result.exit_code == 0, result.output
    text = readme.read_text(encoding="utf-8")
    assert "STALE-TABLE" not in text and "| `mllp` |" in text
    assert "| `json-map` | json or fhir |" in text
    assert text.startswith("# x\n\n") and "\n\nkept\n" in text
    assert with_readme_tables(text) == text
    readme.write_text("no markers\n", encoding="utf-8")
    missing = CliRunner().invoke(main, ["schema", "--readme", str(readme)])
    assert missing.exit_code == 1 and "registry:connectors" in missing.output


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
