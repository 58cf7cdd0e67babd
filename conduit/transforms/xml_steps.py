"""The ``xpath`` and ``xslt`` steps, for XML and SOAP bodies (lxml).

``xpath`` extracts values into variables (``vars.<name>``) for later steps, templates and
routing; ``xslt`` transforms the body with a stylesheet. Expressions and stylesheets compile when
the channel loads. The XML parser resolves no entities and fetches nothing (no XXE), and a
stylesheet may read or write no files or network (lxml's access control): a transform does no
hidden I/O.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from conduit.core.errors import MessageError
from conduit.core.registry import step
from conduit.transforms.channelfiles import read_channel_file
from conduit.transforms.registry import StepOptions, StepState
from conduit.transforms.template import TemplateText, compile_template, render_template

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def xml_body(state: StepState) -> Any:
    """The current body as an lxml element (MessageError if it is not XML)."""
    if state.body is None:
        raise MessageError("no XML body: this step needs an XML message (data_type: xml) or a "
                           "step before it that produces XML")
    try:
        return etree.fromstring(state.body.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MessageError(f"the body is not well-formed XML: {exc.msg}") from None


def _value(result: Any) -> str:
    """An XPath result as text: a node set gives its first node's string value."""
    if isinstance(result, list):
        if not result:
            return ""
        first = result[0]
        if isinstance(first, etree._Element):
            return "".join(first.itertext())
        return str(first)
    if isinstance(result, bool):
        return "true" if result else "false"
    if isinstance(result, float) and result.is_integer():
        return str(int(result))
    return str(result)


class XPathOptions(StepOptions):
    """Extract values from the XML body into variables (vars.NAME) with XPath 1.0."""

    extract: dict[str, str] = Field(
        description="Variable name -> XPath expression; the first match's text is stored.",
        examples=[{"mrn": "//p:Patient/p:MRN", "family": "string(//p:Name/p:Family)"}])
    namespaces: dict[str, str] = Field(
        default_factory=dict, description="Prefix -> namespace URI used in the expressions.",
        examples=[{"p": "urn:example:registration", "soap":
                   "http://schemas.xmlsoap.org/soap/envelope/"}])
    required: list[str] = Field(
        default_factory=list,
        description="Variables that must not come out empty (else the message is an ERROR).")

    @model_validator(mode="after")
    def _compile(self) -> XPathOptions:
        for name, expression in self.extract.items():
            try:
                etree.XPath(expression, namespaces=self.namespaces)
            except etree.XPathSyntaxError as exc:
                raise ValueError(f"extract.{name}: invalid XPath {expression!r}: {exc}") from None
        unknown = set(self.required) - set(self.extract)
        if unknown:
            raise ValueError(f"required names {sorted(unknown)} are not extracted")
        return self


@step("xpath", XPathOptions, needs=("xml",),
      summary="extract values from XML and SOAP bodies into variables with XPath 1.0 (lxml, no "
              "external entities)")
class XPathExtract:
    """Extract values from the XML body into variables (vars.NAME) with XPath 1.0."""

    def __init__(self, options: XPathOptions) -> None:
        self.label = "xpath " + ", ".join(options.extract)
        self._paths = {name: etree.XPath(expr, namespaces=options.namespaces)
                       for name, expr in options.extract.items()}
        self._required = options.required

    def __call__(self, state: StepState) -> None:
        root = xml_body(state)
        for name, path in self._paths.items():
            value = _value(path(root))
            if not value and name in self._required:
                raise MessageError(f"xpath: required value {name!r} not found in the body")
            state.variables[name] = value


class XsltOptions(StepOptions):
    """Transform the XML body with an XSLT 1.0 stylesheet; the result is the new body."""

    file: str | None = Field(None, description="Stylesheet file, relative to the channel file.",
                             examples=["xslt/soap-to-registration.xsl"])
    stylesheet: str | None = Field(None, description="The stylesheet inline.")
    params: dict[str, TemplateText] = Field(
        default_factory=dict,
        description="Stylesheet parameters (xsl:param), each a text or Jinja2 template "
                    "(vars and msg in scope), passed as strings.",
        examples=[{"facility": "GOODHEALTH", "mrn": "{{ vars.mrn }}"}])
    _source: str = PrivateAttr("")

    @model_validator(mode="after")
    def _load(self, info: ValidationInfo) -> XsltOptions:
        if (self.file is None) == (self.stylesheet is None):
            raise ValueError("give exactly one of 'file' or 'stylesheet'")
        source = self.stylesheet if self.stylesheet is not None else \
            read_channel_file(self.file or "", info.context)
        _compile_xslt(source, self.file or "stylesheet")
        self._source = source
        return self

    @property
    def source(self) -> str:
        return self._source


def _compile_xslt(source: str, where: str) -> etree.XSLT:
    try:
        document = etree.fromstring(source.encode("utf-8"), _PARSER)
        return etree.XSLT(document, access_control=etree.XSLTAccessControl.DENY_ALL)
    except (etree.XMLSyntaxError, etree.XSLTParseError) as exc:
        raise ValueError(f"{where}: not a usable XSLT stylesheet: {exc}") from None


@step("xslt", XsltOptions, needs=("xml",),
      summary="transform XML and SOAP bodies with XSLT 1.0 (lxml, no external entities)")
class XsltTransform:
    """Transform the XML body with an XSLT 1.0 stylesheet; the result is the new body."""

    def __init__(self, options: XsltOptions) -> None:
        self.label = "xslt " + (options.file or "stylesheet")
        self._xslt = _compile_xslt(options.source, self.label)
        self._params = {k: compile_template(v) for k, v in options.params.items()}

    def __call__(self, state: StepState) -> None:
        root = xml_body(state)
        params = {k: etree.XSLT.strparam(render_template(t, state.message, state.variables))
                  for k, t in self._params.items()}
        try:
            result = self._xslt(root, **params)
        except etree.XSLTApplyError as exc:
            raise MessageError(f"{self.label} failed: {exc}") from None
        state.body = str(result)


