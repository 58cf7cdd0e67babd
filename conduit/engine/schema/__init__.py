"""The JSON Schema of channel files, generated from the pydantic models.

Editors use the committed copy, ``channel.schema.json`` beside this module (channel files point
at it in their first line); ``conduit schema`` regenerates it, and a test fails when the copy
no longer matches the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("channel.schema.json")


def channel_schema() -> dict[str, Any]:
    """The JSON Schema of a channel file (field descriptions and examples included)."""
    from conduit.engine.channel import Channel

    schema = Channel.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    """The schema as written to ``channel.schema.json``: stable, indented, a final newline."""
    return json.dumps(channel_schema(), indent=2, ensure_ascii=False) + "\n"
