"""The ``lookup`` step: translate codes through a table (CSV file or database query).

The classic case is local lab codes to LOINC: match OBX-3.1 against a column, write the LOINC
code, name and system into the same OBX, for every OBX. The table is read once, when the channel
loads (a database table too: one query at load, none per message), so a miss costs a dict
lookup. What a miss does is the channel's choice: keep the value, fail the message, or write
defaults.
"""

from __future__ import annotations

import csv
import io
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from conduit.core.errors import MessageError
from conduit.core.registry import step
from conduit.hl7.escape import escape
from conduit.hl7.path import parse_path
from conduit.transforms.channelfiles import read_channel_file
from conduit.transforms.registry import StepOptions, StepState
from conduit.transforms.template import TemplateText, compile_template, render_template


class DatabaseTable(BaseModel):
    """A lookup table read with one SQL query when the channel loads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="SQLAlchemy database URL (use ${ENV} for secrets).",
                     examples=["postgresql://conduit@db/terminology", "sqlite:///codes.db"])
    query: str = Field(description="A SELECT whose column names are the ones used here.",
                       examples=["SELECT local_code, loinc, loinc_name FROM lab_map"])


class LookupOptions(StepOptions):
    """Translate a code through a table (CSV or database) and write what it maps to."""

    table: str | None = Field(None, description="CSV file with a header row, relative to the "
                                                 "channel file.",
                              examples=["tables/lab-to-loinc.csv"])
    database: DatabaseTable | None = Field(None, description="Or a database query.")
    key: str = Field(description="The column the value is matched against.",
                     examples=["local_code"])
    field: str | None = Field(
        None, description="HL7 path of the value to look up; without a segment index it is "
                          "looked up in every segment of that name (each OBX).",
        examples=["OBX-3.1"])
    value: TemplateText | None = Field(
        None, description="Or the value as a template (for JSON/XML bodies).",
        examples=["{{ vars.body.code }}"])
    write: dict[str, str] = Field(
        description="Target -> column written on a hit. A target is an HL7 path in the same "
                    "segment as 'field', or vars.NAME.",
        examples=[{"OBX-3.1": "loinc", "OBX-3.2": "loinc_name"}])
    set: dict[str, str] = Field(
        default_factory=dict, description="Target -> literal text also written on a hit.",
        examples=[{"OBX-3.3": "LN"}])
    on_miss: Literal["keep", "error", "default"] = Field(
        "keep", description="keep: leave the message as it is; error: the message is an ERROR; "
                            "default: write 'default'.")
    default: dict[str, str] = Field(default_factory=dict,
                                    description="Target -> literal text written on a miss.",
                                    examples=[{"OBX-3.3": "99LOCAL"}])
    ignore_case: bool = Field(False, description="Match keys case-insensitively.")
    _rows: dict[str, dict[str, str]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _load(self, info: ValidationInfo) -> LookupOptions:
        if (self.table is None) == (self.database is None):
            raise ValueError("give exactly one of 'table' or 'database'")
        if (self.field is None) == (self.value is None):
            raise ValueError("give exactly one of 'field' or 'value'")
        if self.on_miss == "default" and not self.default:
            raise ValueError("on_miss: default needs 'default' values")
        segment = parse_path(self.field).segment if self.field else None
        for target in (*self.write, *self.set, *self.default):
            if target.startswith("vars."):
                continue
            p = parse_path(target)
            if p.field is None or segment is None or p.segment != segment \
                    or p.segment_index is not None:
                raise ValueError(f"target {target!r}: an HL7 target must be a field of the "
                                 f"'field' segment ({segment or 'no field given'}), or vars.NAME")
        rows = _csv_rows(read_channel_file(self.table, info.context), self.table) \
            if self.table else _db_rows(self.database)  # type: ignore[arg-type]
        columns = set(rows[0]) if rows else set()
        needed = {self.key, *self.write.values()}
        if rows and not needed <= columns:
            raise ValueError(f"columns {sorted(needed - columns)} not in the table "
                             f"(it has {sorted(columns)})")
        index: dict[str, dict[str, str]] = {}
        for row in rows:
            k = row[self.key].strip()
            index.setdefault(k.casefold() if self.ignore_case else k, row)  # first row wins
        self._rows = index
        return self

    @property
    def rows(self) -> dict[str, dict[str, str]]:
        return self._rows


def _csv_rows(text: str, name: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    if not reader.fieldnames:
        raise ValueError(f"{name}: no header row")
    return [{k: (v or "") for k, v in row.items() if k is not None} for row in reader]


def _db_rows(db: DatabaseTable) -> list[dict[str, str]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db.url)
    try:
        with engine.connect() as connection:
            result = connection.execute(text(db.query))
            return [{k: "" if v is None else str(v) for k, v in row._mapping.items()}
                    for row in result]
    except Exception as exc:
        raise ValueError(f"database lookup table: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


@step("lookup", LookupOptions,
      summary="map codes through a CSV or database table (e.g. local lab codes → LOINC), with a "
              "default for misses")
class Lookup:
    """Translate a code through a table (CSV or database) and write what it maps to."""

    def __init__(self, options: LookupOptions) -> None:
        self.label = f"lookup {options.field or 'value'} in {options.table or 'database'}"
        self._o = options
        self._rows = options.rows
        self._template = compile_template(options.value) if options.value else None
        p = parse_path(options.field) if options.field else None
        self._segment = p.segment if p else ""
        self._every = p is not None and p.segment_index is None
        self._rest = options.field.split("-", 1)[1] if options.field else ""

    def __call__(self, state: StepState) -> None:
        if self._template is not None:
            key = render_template(self._template, state.message, state.variables)
            self._apply(state, key, None)
            return
        message = state.message
        if message is None:
            raise MessageError(f"{self.label}: 'field' reads HL7 v2; use 'value' for other "
                               "bodies")
        if not self._every:
            self._apply(state, message.get(self._o.field or ""), None)
            return
        for n in range(1, len(message.segments(self._segment)) + 1):
            where = f"{self._segment}[{n}]"
            self._apply(state, message.get(f"{where}-{self._rest}"), where)

    def _apply(self, state: StepState, key: str, where: str | None) -> None:
        found = self._rows.get(key.strip().casefold() if self._o.ignore_case else key.strip())
        if found is not None:
            values = {t: found[c] for t, c in self._o.write.items()}
            values.update(self._o.set)
        elif self._o.on_miss == "error":
            raise MessageError(f"{self.label}: no row for the value"
                               + (f" in {where}" if where else ""))
        elif self._o.on_miss == "default":
            values = dict(self._o.default)
        else:
            return
        for target, value in values.items():
            if target.startswith("vars."):
                state.variables[target[5:]] = value
                continue
            message = state.message
            path = target if where is None else f"{where}-{target.split('-', 1)[1]}"
            message.set(path, escape(value, message.separators))


