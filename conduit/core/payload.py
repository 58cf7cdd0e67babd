"""Message bodies other than HL7 v2: JSON, XML, FHIR (JSON) and plain text.

A channel's ``data_type`` says what its messages are (default: what its source carries, HL7 v2
for MLLP and files). HL7 v2 keeps its own lazy parser (:mod:`conduit.hl7.message`); every other
kind is read here, once on receipt (so a sender is told at once that its JSON is broken) and
again by the pipeline (which runs from the bus and may be in another process).

:func:`parse_payload` raises :class:`~conduit.core.errors.MessageError` with a reason that
names the problem and its position, never the content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from conduit.core.errors import MessageError

DataType = Literal["hl7v2", "json", "xml", "fhir", "text"]
DATA_TYPES: tuple[str, ...] = ("hl7v2", "json", "xml", "fhir", "text")


@dataclass(slots=True)
class Payload:
    """A parsed non-HL7 message and the fields the store indexes."""

    data: Any
    """dict/list for JSON and FHIR, an :class:`XmlView` for XML, the text for text."""
    text: str
    control_id: str | None = None
    message_type: str | None = None
    patient_id: str | None = None


class XmlView:
    """``vars.body.mrn`` / ``vars.body['mrn']``: the first child with that local name;
    printed, a view is its text. ``all('x')`` gives every such child, ``xpath(...)`` strings.
    ``get('x')`` is the text of an optional child (``""`` when absent). A child named like a
    method (``text``, ``get``, ``all``, ``xpath``) is read as ``vars.body['text']``."""

    __slots__ = ("_element",)

    def __init__(self, element: Any) -> None:
        self._element = element

    def _children(self, name: str) -> list[Any]:
        return [c for c in self._element if isinstance(c.tag, str)
                and _qname(c).localname == name]

    def __getitem__(self, name: str) -> XmlView:
        found = self._children(name)
        if not found:
            raise KeyError(name)
        return XmlView(found[0])

    def get(self, name: str, default: str = "") -> str:
        """The text of the first ``name`` child, or ``default`` when there is none."""
        found = self._children(name)
        return "".join(found[0].itertext()) if found else default

    def all(self, name: str) -> list[XmlView]:
        return [XmlView(c) for c in self._children(name)]

    def xpath(self, expression: str) -> list[str]:
        return [str(v) for v in self._element.xpath(expression)]

    @property
    def element(self) -> Any:
        """The lxml element viewed (what an XPath filter is evaluated on)."""
        return self._element

    @property
    def text(self) -> str:
        return "".join(self._element.itertext())

    def __str__(self) -> str:
        return self.text


def _qname(element: Any) -> Any:
    from lxml import etree

    return etree.QName(element)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MessageError(f"not UTF-8 at byte {exc.start}") from None


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise MessageError(f"not valid JSON: {exc.msg} at line {exc.lineno} column "
                           f"{exc.colno}") from None


def parse_xml(raw: bytes) -> Any:
    """An lxml element; entities are not resolved and nothing is fetched from the network."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                             remove_blank_text=False)
    try:
        return etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise MessageError(f"not well-formed XML: {exc.msg}") from None


def parse_payload(data_type: str, raw: bytes) -> Payload:
    """Read ``raw`` as ``data_type`` (anything but ``hl7v2``)."""
    if data_type in ("json", "fhir"):
        data = parse_json(raw)
        text = _text(raw)
        if data_type == "json":
            return Payload(data, text)
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            raise MessageError("not a FHIR resource: a JSON object with 'resourceType' is needed")
        return Payload(data, text, *_fhir_fields(data))
    if data_type == "xml":
        element = parse_xml(raw)
        return Payload(XmlView(element), _text(raw), message_type=_local_name(element.tag))
    if data_type == "text":
        return Payload(_text(raw), _text(raw))
    raise ValueError(f"no payload parser for data type {data_type!r}")


def _local_name(tag: Any) -> str | None:
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else None


def _fhir_fields(resource: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    kind = str(resource["resourceType"])
    if kind == "Bundle" and isinstance(resource.get("type"), str):
        kind = f"Bundle/{resource['type']}"
    identifier = resource.get("identifier")
    if isinstance(identifier, list):
        identifier = identifier[0] if identifier else None
    control = resource.get("id") or (identifier.get("value") if isinstance(identifier, dict)
                                     else None)
    patient = None
    if resource["resourceType"] == "Patient" and isinstance(identifier, dict):
        patient = identifier.get("value")
    else:
        for key in ("subject", "patient"):
            ref = resource.get(key)
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                patient = ref["reference"]
                break
    return (str(control) if control else None, kind, str(patient) if patient else None)
