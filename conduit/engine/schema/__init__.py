"""The JSON Schema of channel files and the README's component tables, generated from the
component registry.

Editors use the committed copy, ``channel.schema.json`` beside this module (channel files point
at it in their first line); ``conduit schema`` regenerates it, ``conduit schema --readme
README.md`` rewrites the connector and step tables between their markers, and a test fails when
either no longer matches the registry. Kinds are sorted, so the output does not depend on the
order in which modules registered them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conduit.core.registry import Registry

SCHEMA_FILE = Path(__file__).with_name("channel.schema.json")
TABLES = ("connectors", "steps")
"""The README sections written from the registry, between ``<!-- registry:NAME -->`` and
``<!-- /registry:NAME -->``."""


def channel_schema(registry: Registry | None = None) -> dict[str, Any]:
    """The JSON Schema of a channel file (field descriptions and examples included)."""
    from conduit.engine.channel import channel_model

    schema = channel_model(registry).model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text(registry: Registry | None = None) -> str:
    """The schema as written to ``channel.schema.json``: stable, indented, a final newline."""
    return json.dumps(channel_schema(registry), indent=2, ensure_ascii=False) + "\n"


def readme_table(name: str, registry: Registry | None = None) -> str:
    """One README table (``connectors`` or ``steps``) as Markdown, a row per kind, sorted."""
    from conduit.engine.components import default_registry

    registry = default_registry() if registry is None else registry
    if name == "connectors":
        rows = ["| type | source | carries | destination |", "| --- | --- | --- | --- |"]
        for kind in sorted({*registry.sources, *registry.destinations}):
            source = registry.sources.get(kind)
            destination = registry.destinations.get(kind)
            rows.append(f"| `{kind}` | {source.summary if source else ''} | "
                        f"{source.carries if source else ''} | "
                        f"{destination.summary if destination else ''} |")
    elif name == "steps":
        rows = ["| step | needs | produces | what it does |", "| --- | --- | --- | --- |"]
        for kind in sorted(registry.steps):
            spec = registry.steps[kind]
            needs = " or ".join(spec.needs) if spec.needs else "any"
            rows.append(f"| `{kind}` | {needs} | {spec.produces or 'the same'} | "
                        f"{spec.summary} |")
    else:
        raise ValueError(f"no README table {name!r}; one of: {', '.join(TABLES)}")
    return "\n".join(rows) + "\n"


def with_readme_tables(text: str, registry: Registry | None = None) -> str:
    """``text`` (a README) with every registry table rewritten between its markers."""
    for name in TABLES:
        marked = re.compile(rf"(<!-- registry:{name} -->\n).*?(<!-- /registry:{name} -->)",
                            re.S)
        found = marked.search(text)
        if found is None:
            raise ValueError(f"the README has no <!-- registry:{name} --> ... "
                             f"<!-- /registry:{name} --> markers")
        text = text[:found.end(1)] + readme_table(name, registry) + text[found.start(2):]
    return text
