"""The access audit: who saw which message body, when and from where, and what they changed.

Kept in the store (``audit_log``, no foreign key, so it outlives pruned messages), viewable by
admins and exported as FHIR R4 AuditEvent resources (DICOM audit codes, as IHE ATNA expects).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from conduit.ops.tables import audit_log

#: action -> (AuditEvent.type, subtype (restful interaction), action code)
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_KINDS: dict[str, tuple[dict[str, str], str | None, str]] = {
    "view": ({"system": _DCM, "code": "110110", "display": "Patient Record"}, "read", "R"),
    "export": ({"system": _DCM, "code": "110106", "display": "Export"}, "search", "R"),
    "search": ({"system": _DCM, "code": "110112", "display": "Query"}, "search", "E"),
    "preview": ({"system": _DCM, "code": "110110", "display": "Patient Record"}, "read", "R"),
    "reprocess": ({"system": _DCM, "code": "110110", "display": "Patient Record"},
                  "update", "U"),
    "login": ({"system": _DCM, "code": "110114", "display": "User Authentication"}, None, "E"),
    "login-failed": ({"system": _DCM, "code": "110114", "display": "User Authentication"},
                     None, "E"),
    "login-refused": ({"system": _DCM, "code": "110114", "display": "User Authentication"},
                      None, "E"),
    "logout": ({"system": _DCM, "code": "110114", "display": "User Authentication"}, None, "E"),
}
_DEFAULT = ({"system": _DCM, "code": "110100", "display": "Application Activity"}, None, "E")


class Audit:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, user: str | None, action: str, message_ids: Iterable[int | None] = (None,),
               remote: str | None = None, detail: str | None = None) -> None:
        """One row per message (or one without a message); commits before returning."""
        stamp = datetime.now(UTC)
        rows = [{"at": stamp, "username": user, "action": action, "message_id": m,
                 "remote": remote, "detail": detail} for m in message_ids]
        if rows:
            with self.engine.begin() as connection:
                connection.execute(audit_log.insert(), rows)

    def list(self, *, user: str | None = None, action: str | None = None,
             message_id: int | None = None, since: datetime | None = None,
             limit: int = 200, before_id: int | None = None) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if user:
            query = query.where(audit_log.c.username == user)
        if action:
            query = query.where(audit_log.c.action == action)
        if message_id is not None:
            query = query.where(audit_log.c.message_id == message_id)
        if since:
            query = query.where(audit_log.c.at >= since)
        if before_id:
            query = query.where(audit_log.c.id < before_id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]


def audit_event(entry: dict[str, Any], observer: str = "conduit") -> dict[str, Any]:
    """One audit row as a FHIR R4 AuditEvent resource (a plain dict)."""
    kind, subtype, action = _KINDS.get(entry["action"], _DEFAULT)
    at = entry["at"] if entry["at"].tzinfo else entry["at"].replace(tzinfo=UTC)
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"conduit-audit-{entry['id']}",
        "type": kind,
        "action": action,
        "recorded": at.isoformat(),
        "outcome": "4" if entry["action"] in ("login-failed", "login-refused") else "0",
        "agent": [{
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                "code": "humanuser", "display": "human user"}]},
            "who": {"identifier": {"system": "urn:conduit:user",
                                   "value": entry["username"] or "anonymous"},
                    "display": entry["username"] or "anonymous"},
            "requestor": True,
        }],
        "source": {"observer": {"display": observer},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                       "security-source-type",
                             "code": "4", "display": "Application Server"}]},
    }
    if subtype:
        resource["subtype"] = [{"system": "http://hl7.org/fhir/restful-interaction",
                                "code": subtype}]
    if entry.get("detail"):
        resource["outcomeDesc"] = entry["detail"]
    if entry.get("remote"):
        resource["agent"][0]["network"] = {"address": entry["remote"], "type": "2"}
    if entry.get("message_id") is not None:
        resource["entity"] = [{
            "what": {"identifier": {"system": "urn:conduit:message",
                                    "value": str(entry["message_id"])}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                     "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                     "code": "4", "display": "Domain Resource"},
        }]
    return resource


def audit_bundle(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    resources = [audit_event(e) for e in entries]
    return {"resourceType": "Bundle", "type": "collection",
            "timestamp": datetime.now(UTC).isoformat(), "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, r['id'])}",
                       "resource": r} for r in resources]}
