"""ED and RP values -> FHIR Attachment (IG: ED[Attachment], RP[Attachment]).

An ED carries a document in the message (a PDF in Base64, a text in Hex or plain); an RP points
at one (a URL). The OBX[Observation] map puts them in the ``valueAttachment`` extension of the
Observation, the MDM map in DocumentReference.content: both build the Attachment here. Data that
does not decode is never passed on as if it were the document: the Attachment then says so.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from conduit.fhir.v2 import Field

__all__ = ["VALUE_ATTACHMENT", "VALUE_ATTACHMENT_URLS", "from_ed", "from_rp", "mime_type",
           "text_data"]

Json = dict[str, Any]

# the IG's OBX[Observation] map for ED/RP, URL as the map writes it (R5's value[x] has Attachment)
VALUE_ATTACHMENT = ("https://hl7.org/fhir/5.0/StructureDefinition/"
                    "extension-Observation.valueAttachment")
VALUE_ATTACHMENT_URLS = frozenset({
    VALUE_ATTACHMENT, VALUE_ATTACHMENT.replace("https:", "http:"),
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value"})
"""The IG's URL and the spellings other converters use (the R5 cross-version extension)."""

UNDECODABLE = "content not decodable (invalid {} in OBX-5)"

_TYPES = {"pdf": "application/pdf", "text": "text/plain", "plain": "text/plain",
          "html": "text/html", "xml": "application/xml", "rtf": "application/rtf",
          "jpeg": "image/jpeg", "jpg": "image/jpeg", "png": "image/png", "gif": "image/gif",
          "tiff": "image/tiff", "octet-stream": "application/octet-stream"}
_MEDIA = ("application", "text", "image", "audio", "video")


def mime_type(v2_type: str) -> str:
    """ED.2/ED.3 (or RP.3/RP.4) joined by ``/`` -> a MIME type: ``AP/PDF`` -> application/pdf."""
    low = v2_type.lower()
    if "/" in low and low.split("/")[0] in _MEDIA and low.split("/")[1]:
        return low
    return _TYPES.get(low.split("/")[-1], "application/octet-stream")


def from_ed(f: Field) -> Json | None:
    """ED (source ^ type ^ subtype ^ encoding ^ data) -> Attachment; None when it has no data."""
    data, encoding = f[5], f[4].upper()
    if not data:
        return None
    attachment: Json = {"contentType": mime_type("/".join(v for v in (f[2], f[3]) if v))}
    if encoding == "BASE64":
        packed = "".join(data.split())  # senders wrap long Base64 over lines
        if _is_base64(packed):
            attachment["data"] = packed
        else:
            attachment["title"] = UNDECODABLE.format("Base64")
    elif encoding == "HEX":
        try:
            attachment["data"] = base64.b64encode(bytes.fromhex(data)).decode("ascii")
        except ValueError:
            attachment["title"] = UNDECODABLE.format("Hex")
    else:  # A (no encoding: the text itself) and anything a sender leaves empty
        attachment["data"] = text_data(data)
    return attachment


def from_rp(f: Field) -> Json | None:
    """RP (pointer ^ application ^ type ^ subtype) -> Attachment with a url; None if empty."""
    if not f[1]:
        return None
    attachment: Json = {}
    if f[3]:
        attachment["contentType"] = mime_type("/".join(v for v in (f[3], f[4]) if v))
    attachment["url"] = f[1]
    return attachment


def text_data(text: str) -> str:
    """Text as Attachment.data (base64 of its UTF-8)."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _is_base64(data: str) -> bool:
    try:
        base64.b64decode(data, validate=True)
    except (ValueError, binascii.Error):
        return False
    return True
