"""TXA (+ its OBX) -> DocumentReference (IG: TXA[DocumentReference], MDM message map).

The OBX segments of an MDM carry the document itself: text lines (TX/FT/ST) are joined and
attached as text/plain, an ED becomes an attachment with its own type, an RP a URL. They do not
also become Observations (Microsoft's converter makes both): the IG's MDM map puts the document
content in DocumentReference.content only.
"""

from __future__ import annotations

from conduit.fhir import attachment, vocabulary
from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.entities import practitioner
from conduit.fhir.v2 import Seg

# table 0273 availability -> document-reference-status
_ORIGINATED = "http://hl7.org/fhir/6.0/StructureDefinition/extension-date"
_ALTERNATE = "http://hl7.org/fhir/StructureDefinition/alternate-codes"
_STATUS = {"AV": "current", "CA": "entered-in-error", "OB": "superseded", "UN": "current"}
# table 0271 completion status -> composition-status (docStatus)
_DOC_STATUS = {"AU": "final", "DI": "preliminary", "DO": "final", "IN": "preliminary",
               "IP": "preliminary", "LA": "final", "PA": "preliminary", "CA": "entered-in-error"}


def txa(ctx: Conversion, seg: Seg) -> None:
    finish(ctx)
    availability = seg[19].upper()
    body: Json = {"status": _STATUS.get(availability, "current")}
    if availability in ("CA", "OB", "UN"):  # the v2 code beside the status it became (IG)
        body["_status"] = {"extension": [{"url": _ALTERNATE, "valueCodeableConcept": {
            "coding": [dt.coding(availability, "", dt.table_uri("0273"))]}}]}
    if master := ctx.entity_identifier(seg.field(12)):
        body["masterIdentifier"] = master
    idents = [i for n, code in ((14, "PLAC"), (15, "FILL"))
              if (i := ctx.entity_identifier(seg.field(n), code))]
    if file_name := seg[16]:  # TXA-16 unique document file name
        idents.append({"value": file_name, "system": ctx.systems.sender})
    if idents:
        body["identifier"] = idents
    if doc_status := _DOC_STATUS.get(seg[17].upper()):
        body["docStatus"] = doc_status
    if kind := dt.codeable(seg.field(2), "0270"):
        body["type"] = kind
    if ctx.patient:
        body["subject"] = {"reference": ctx.patient}
    if when := ctx.instant(seg[6]):  # TXA-6 origination (IG); TXA-4 is the activity's time
        body["date"] = when
    elif day := dt.date(seg[6]):  # a date alone does not fit the instant: the IG's extension
        body["extension"] = [{"url": _ORIGINATED, "valueDate": day}]
    if title := seg[25]:  # TXA-25 document title
        body["description"] = title
    labels = [c for f in seg.reps(18)
              if (c := vocabulary.mapped(dt.codeable(f, "0272"), "DocumentConfidentialityStatus",
                                         f[1]))]
    if labels:
        body["securityLabel"] = labels
    authors = [a for f in (*seg.reps(5), *seg.reps(9)) if (a := practitioner(ctx, f))]
    if authors:
        body["author"] = authors
    if seg.reps(10) and (who := practitioner(ctx, seg.reps(10)[0])):
        body["authenticator"] = who
    if parent := ctx.entity_identifier(seg.field(13)):
        body["relatesTo"] = [{"code": "replaces", "target": {"identifier": parent}}]
    context: Json = {}
    if ctx.encounter:
        context["encounter"] = [{"reference": ctx.encounter}]
    if activity := ctx.datetime(seg[4]):
        context["period"] = {"start": activity}
    if context:
        body["context"] = context
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
