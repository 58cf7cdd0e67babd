"""The lookup step: CSV and database tables, every segment, misses."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
from sqlalchemy import create_engine, text

from conduit.core.errors import MessageError
from conduit.hl7.message import Message
from conduit.transforms.lookup import Lookup, LookupOptions
from conduit.transforms.registry import StepState

ORU = ("MSH|^~\\&|LAB|L|EHR|H|20240101||ORU^R01^ORU_R01|1|P|2.5.1\r"
       "PID|1||42^^^H^MR\rOBR|1||F1|PANEL^Panel^L\r"
       "OBX|1|NM|GLU^Glucose^L||5.4|mmol/L\rOBX|2|NM|XYZ^Unknown^L||1\r"
       "OBX|3|NM|k^Potassium^L||4.1|mmol/L\r")
CSV = ("local,loinc,name\nGLU,2345-7,Glucose [Mass/volume] in Serum or Plasma\n"
       "K,2823-3,Potassium [Moles/volume] in Serum or Plasma\n")


def options(tmp_path: Path, **extra: object) -> LookupOptions:
    (tmp_path / "codes.csv").write_text(CSV, encoding="utf-8")
    data = {"table": "codes.csv", "key": "local", "field": "OBX-3.1",
            "write": {"OBX-3.1": "loinc", "OBX-3.2": "name"}, "set": {"OBX-3.3": "LN"}, **extra}
    return LookupOptions.model_validate(data, context={"base_dir": tmp_path})


def run(opts: LookupOptions) -> Message:
    s = StepState(Message.parse(ORU))
    Lookup(opts)(s)
    return s.message


def test_every_obx_is_translated_and_misses_kept(tmp_path: Path) -> None:
    m = run(options(tmp_path))
    assert m["OBX[1]-3"] == "2345-7^Glucose [Mass/volume] in Serum or Plasma^LN"
    assert m["OBX[2]-3"] == "XYZ^Unknown^L"
    assert m["OBX[3]-3"] == "k^Potassium^L"  # case matters unless asked


def test_ignore_case_and_defaults(tmp_path: Path) -> None:
    m = run(options(tmp_path, ignore_case=True, on_miss="default",
                    default={"OBX-3.3": "99LOCAL"}))
    assert m["OBX[3]-3.1"] == "2823-3"
    assert m["OBX[2]-3"] == "XYZ^Unknown^99LOCAL"


def test_miss_as_error(tmp_path: Path) -> None:
    with pytest.raises(MessageError, match=r"no row for the value in OBX\[2\]"):
        run(options(tmp_path, on_miss="error"))


def test_database_table_and_template_value(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'codes.db'}"
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE map (local TEXT, loinc TEXT)"))
        c.execute(text("INSERT INTO map VALUES ('GLU', '2345-7')"))
    engine.dispose()
    opts = LookupOptions.model_validate({
        "database": {"url": url, "query": "SELECT local, loinc FROM map"}, "key": "local",
        "value": "{{ vars.code }}", "write": {"vars.loinc": "loinc"}})
    s = StepState(None, "{}", {"code": "GLU"})  # type: ignore[arg-type]
    Lookup(opts)(s)
    assert s.variables["loinc"] == "2345-7"


def test_problems_found_at_load(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match=r"columns \['nope'\] not in the table"):
        options(tmp_path, write={"OBX-3.1": "nope"})
    with pytest.raises(pydantic.ValidationError, match="must be a field of the 'field' segment"):
        options(tmp_path, write={"PID-3.1": "loinc"})
    with pytest.raises(pydantic.ValidationError, match="cannot read"):
        LookupOptions.model_validate({"table": "missing.csv", "key": "k", "field": "OBX-3.1",
                                      "write": {"OBX-3.1": "v"}}, context={"base_dir": tmp_path})
