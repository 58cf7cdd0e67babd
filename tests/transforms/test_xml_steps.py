"""xpath and xslt steps on XML bodies."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from conduit.core.errors import MessageError
from conduit.transforms.registry import StepState
from conduit.transforms.xml_steps import XPathExtract, XPathOptions, XsltOptions, XsltTransform

BODY = """<?xml version="1.0"?>
<r:Registration xmlns:r="urn:example:reg">
  <r:MRN>100001</r:MRN>
  <r:Name><r:Family>O'Brien &amp; Sons</r:Family><r:Given>Ann</r:Given></r:Name>
  <r:Visit count="2"/>
</r:Registration>"""
NS = {"r": "urn:example:reg"}


def state(body: str = BODY) -> StepState:
    return StepState(None, body)  # type: ignore[arg-type]


def test_xpath_extracts_text_strings_and_numbers() -> None:
    s = state()
    XPathExtract(XPathOptions(extract={"mrn": "//r:MRN", "family": "string(//r:Family)",
                                       "visits": "count(//r:Visit)", "count": "//r:Visit/@count",
                                       "none": "//r:Missing"}, namespaces=NS))(s)
    assert s.variables == {"mrn": "100001", "family": "O'Brien & Sons", "visits": "1",
                           "count": "2", "none": ""}
    assert s.body == BODY


def test_xpath_required_and_bad_expressions() -> None:
    with pytest.raises(MessageError, match="required value 'x' not found"):
        XPathExtract(XPathOptions(extract={"x": "//r:Missing"}, namespaces=NS,
                                  required=["x"]))(state())
    with pytest.raises(pydantic.ValidationError, match=r"extract\.bad: invalid XPath"):
        XPathOptions(extract={"bad": "//["})
    with pytest.raises(MessageError, match="not well-formed XML"):
        XPathExtract(XPathOptions(extract={"x": "//a"}))(state("<a>"))


def test_xml_entities_are_not_resolved() -> None:
    evil = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<a>&x;</a>')
    s = state(evil)
    XPathExtract(XPathOptions(extract={"a": "string(/a)"}))(s)
    assert "root" not in s.variables["a"]


XSL = """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:r="urn:example:reg">
  <xsl:output method="text"/>
  <xsl:param name="facility"/>
  <xsl:template match="/">PID|1||<xsl:value-of select="//r:MRN"/>^^^<xsl:value-of
    select="$facility"/>^MR||<xsl:value-of select="//r:Family"/></xsl:template>
</xsl:stylesheet>"""


def test_xslt_from_file_with_template_params(tmp_path: Path) -> None:
    (tmp_path / "reg.xsl").write_text(XSL, encoding="utf-8")
    options = XsltOptions.model_validate({"file": "reg.xsl", "params": {
        "facility": "{{ vars.site }}"}}, context={"base_dir": tmp_path})
    s = state()
    s.variables["site"] = "GOOD'HEALTH"
    XsltTransform(options)(s)
    assert s.body == "PID|1||100001^^^GOOD'HEALTH^MR||O'Brien & Sons"


def test_xslt_cannot_read_files() -> None:
    sneaky = XSL.replace('<xsl:value-of select="//r:MRN"/>',
                         "<xsl:value-of select=\"document('/etc/hostname')\"/>")
    with pytest.raises(MessageError):
        XsltTransform(XsltOptions(stylesheet=sneaky))(state())


def test_xslt_options_checked_at_load() -> None:
    with pytest.raises(pydantic.ValidationError, match="exactly one"):
        XsltOptions()
    with pytest.raises(pydantic.ValidationError, match="not a usable XSLT"):
        XsltOptions(stylesheet="<a/>")
