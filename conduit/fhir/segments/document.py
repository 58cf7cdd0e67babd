"""TXA (+ its OBX) -> DocumentReference (IG: TXA[DocumentReference], MDM message map).

The OBX segments of an MDM carry the document itself: text lines (TX/FT/ST) are joined and
attached as text/plain, an ED becomes an attachment with its own type, an RP a URL. They do not
also become Observations (Microsoft's converter makes both): the IG's MDM map puts the document
content in DocumentReference.content only.
"""

from __future__ import annotations

from conduit.fhir import attachment
from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.entities import practitioner
from conduit.fhir.v2 import Seg

# table 0273 availability -> document-reference-status
_STATUS = {"AV": "current", "CA": "entered-in-error", "OB": "superseded", "UN": "current"}
# table 0271 completion status -> composition-status (docStatus)
_DOC_STATUS = {"AU": "final", "DI": "preliminary", "DO": "final", "IN": "preliminary",
               "IP": "preliminary", "LA": "final", "PA": "preliminary", "CA": "entered-in-error"}


def txa(ctx: Conversion, seg: Seg) -> None:
    finish(ctx)
    body: Json = {"status": _STATUS.get(seg[19].upper(), "current")}
    if master := ctx.entity_identifier(seg.field(12)):
        body["masterIdentifier"] = master
    idents = [i for n, code in ((14, "PLAC"), (15, "FILL"))
              if (i := ctx.entity_identifier(seg.field(n), code))]
    if idents:
        body["identifier"] = idents
    if doc_status := _DOC_STATUS.get(seg[17].upper()):
        body["docStatus"] = doc_status
    if kind := dt.codeable(seg.field(2), "0270"):
        body["type"] = kind
    if ctx.patient:
        body["subject"] = {"reference": ctx.patient}
    if when := ctx.instant(seg[4]) or ctx.instant(seg[6]):
        body["date"] = when
    authors = [a for f in (*seg.reps(5), *seg.reps(9)) if (a := practitioner(ctx, f))]
    if authors:
        body["author"] = authors
    if seg.reps(10) and (who := practitioner(ctx, seg.reps(10)[0])):
        body["authenticator"] = who
    if parent := ctx.entity_identifier(seg.field(13)):
        body["relatesTo"] = [{"code": "replaces", "target": {"identifier": parent}}]
    if ctx.encounter:
        body["context"] = {"encounter": [{"reference": ctx.encounter}]}
    key = (("document", dt.identifier_key(master)) if master else ctx.local_key("Document"))
    ctx.document = ctx.add("DocumentReference", key, body)
    ctx.document_text = []
    ctx.document_kind = seg[3].upper()


def content(ctx: Conversion, seg: Seg) -> None:
    """One OBX of the document: text is gathered, ED/RP become attachments now."""
    assert ctx.document is not None
    kind = seg[2].upper()
    for f in seg.reps(5):
        if kind in ("ED", "RP"):  # each repetition is one content (damaged data says so)
            found = attachment.from_ed(f) if kind == "ED" else attachment.from_rp(f)
            if found:
                ctx.document.setdefault("content", []).append({"attachment": found})
        else:
            ctx.document_text.append(f.text())


def finish(ctx: Conversion) -> None:
    """Close the current document: its text becomes an attachment; content is never empty."""
    doc = ctx.document
    if doc is None:
        return
    text = "\n".join(ctx.document_text)
    if text.strip():
        mime = "text/html" if ctx.document_kind == "HTML" else "text/plain"
        doc.setdefault("content", []).insert(0, {"attachment": {
            "contentType": f"{mime}; charset=utf-8", "data": attachment.text_data(text)}})
    if not doc.get("content"):
        # DocumentReference.content is required; say what the document was when none came
        title = (doc.get("type", {}).get("text") or
                 next((c.get("display") or c.get("code") for c in doc.get("type", {})
                       .get("coding", ())), None) or "document")
        doc["content"] = [{"attachment": {"title": title}}]
    ctx.document = None
    ctx.document_text = []
