"""Identity: which ``Identifier.system`` an identifier gets, and the resource ids that follow.

Two senders may both number their patients from 1: MRN ``12345`` at facility A and MRN ``12345``
at facility B are two people. So every identifier gets a system that names who assigned it
(never a bare value), and every resource id is a UUID v5 over the resource type and its
identifying parts (system + value): those two MRNs give two Patients, their results two
Observations, while the same message sent again gives the same ids (idempotent PUTs), and an
A08 after an A01 updates the same resources. Nothing in an id reveals the identifier (PHI).

The system rule (:class:`IdentifierSystems`), for CX (authority CX.4, type CX.5), XCN
(authority XCN.9, type XCN.13), EI (namespace EI.2, universal id EI.3, its type EI.4; the type
is the one the field implies: ``PLAC``/``FILL`` for ORC-2/3 and OBR-2/3, ``VN`` for PV1-19/50)
and DLN (authority = issuing state, type ``DL``); the first rule that answers wins:

1. **Universal id.** The authority has a universal id: HD.2 (EI.3) an OID with HD.3 ``ISO`` or
   empty -> ``urn:oid:<oid>``; HD.3 ``UUID`` -> ``urn:uuid:<uuid>``; HD.3 ``URI``/``URL``, or a
   value starting ``http://``, ``https://`` or ``urn:`` -> that URI; an HD.1 that is itself an
   OID or URI likewise. An OID the FHIR identifier registry names is written as the registry's
   URI: ``2.16.840.1.113883.4.1`` -> ``http://hl7.org/fhir/sid/us-ssn``, ``...4.6`` ->
   ``http://hl7.org/fhir/sid/us-npi``, ``...4.572`` -> ``http://hl7.org/fhir/sid/us-medicare``,
   ``...4.927`` -> ``http://hl7.org/fhir/sid/us-mbi``.
2. **Well-known type** (FHIR identifier registry, US Core): type ``SS`` or namespace ``SSA`` /
   ``USSSA`` -> ``http://hl7.org/fhir/sid/us-ssn``; type or namespace ``NPI`` ->
   ``http://hl7.org/fhir/sid/us-npi``; type ``MC`` (patient's Medicare number) ->
   ``http://hl7.org/fhir/sid/us-mbi`` when the value has the MBI form (11 characters, CMS's
   pattern, dashes ignored), ``http://hl7.org/fhir/sid/us-medicare`` when it has the HICN form
   (9 digits and a 1-2 character suffix); an ``MC`` of neither form goes on to rule 3.
   PID-19 is an SSN (``us-ssn``). This rule comes before the channel's mappings so that a
   hospital namespace on an SSN never files it among the hospital's MRNs.
3. **Channel mapping by authority**: the step option ``identifier_systems: {authorities:
   {<namespace>: <system URI>}}``, looked up by the authority's namespace (CX.4.1, XCN.9.1,
   EI.2, exact text).
4. **Channel mapping by sender**: the authority is empty and ``identifier_systems:
   {facilities: {<MSH-4.1>: <system URI>}}`` names the sending facility.
5. **Derived from the sender**: ``urn:conduit:sender:<MSH-4>:<MSH-3>``, followed by
   ``:<namespace>`` when the authority has a namespace (a bare ``HOSPA`` from two senders is
   two authorities until a mapping says otherwise). MSH-4 and MSH-3 are their HD.1 (else HD.2);
   each part is percent-encoded as UTF-8 with only ``A-Z a-z 0-9 - . _ ~`` kept (so ``:``,
   ``/``, ``&`` and spaces never split a part) and keeps its case; an empty part stays empty.
   Examples: ``urn:conduit:sender:HOSPA:ADT1``, ``urn:conduit:sender:LAB%20B:LIS:HOSPA``,
   ``urn:conduit:sender::LIS`` (no MSH-4).

Values that are the sender's own by definition get rule 5's system without a namespace: MSH-10
(``Bundle.identifier`` and the Provenance entity; MSH-3's universal id instead when it has one),
FT1-2/3 transaction ids and IN1-36 policy numbers. PID-20 (driver's licence) takes the issuing
state (DLN.2) as its namespace.

A message whose MSH-3 and MSH-4 are both empty does not say who sent it: the conversion refuses
it (``MessageError``, so it is kept for replay and answered ``AE``) whatever its identifiers.
When a system comes from rules 2-5 and the authority had a namespace, the namespace is also kept
as ``Identifier.assigner.display``.

Resource ids (``resource_id(type, *parts)``) take these parts:

- Patient: system|value of the first PID-3 identifier typed ``MR``, else of the first identifier
  (PID-3, PID-2, PID-4, PID-19, PID-20 in that order);
- Encounter: system|value of the first visit number (PV1-19, else PV1-50);
- ServiceRequest: ``order`` + system|value of the placer number (ORC-2, else OBR-2), else the
  filler number; DiagnosticReport: ``report`` + the filler number (OBR-3), else the placer;
- Observation: the id of its report/order/immunization + OBX-1 + OBX-3.1 + OBX-4;
- Practitioner / Organization: system|value of their identifier, else the sender (MSH-4, MSH-3)
  + the name; Location: the sender + its PL parts;
- anything without business identifiers: MSH-4.1, MSH-3.1, MSH-10, the kind and its position in
  the message.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import quote

from conduit.core.errors import MessageError

__all__ = ["NAMESPACE", "IdentifierSystems", "resource_id"]

US_SSN = "http://hl7.org/fhir/sid/us-ssn"
US_NPI = "http://hl7.org/fhir/sid/us-npi"
US_MEDICARE = "http://hl7.org/fhir/sid/us-medicare"
US_MBI = "http://hl7.org/fhir/sid/us-mbi"

REGISTRY_OIDS = {  # FHIR identifier registry: an OID that has a preferred URI
    "urn:oid:2.16.840.1.113883.4.1": US_SSN,
    "urn:oid:2.16.840.1.113883.4.6": US_NPI,
    "urn:oid:2.16.840.1.113883.4.572": US_MEDICARE,
    "urn:oid:2.16.840.1.113883.4.927": US_MBI,
}
_WELL_KNOWN_TYPES = {"SS": US_SSN, "NPI": US_NPI}
_WELL_KNOWN_NAMESPACES = {"SSA": US_SSN, "USSSA": US_SSN, "NPI": US_NPI}
# CMS's Medicare Beneficiary Identifier: 11 characters, letters without S L O I B Z
_MBI = re.compile(r"[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d[AC-HJKMNP-RT-Y]"
                  r"[AC-HJKMNP-RT-Y0-9]\d[AC-HJKMNP-RT-Y]{2}\d{2}")
_HICN = re.compile(r"\d{9}[A-Z][A-Z0-9]?")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_MAPPING_KEYS = ("authorities", "facilities")
SENDER_PREFIX = "urn:conduit:sender:"


class IdentifierSystems:
    """The system rule of the module docstring for one message (its sender and the mapping)."""

    __slots__ = ("_authorities", "_facilities", "_facility", "_known", "_sender")

    def __init__(self, mapping: Mapping[str, Mapping[str, str]] | None,
                 facility: str, application: str) -> None:
        if not facility and not application:
            raise MessageError(
                "MSH-3 (sending application) and MSH-4 (sending facility) are both empty: "
                "identifiers without a universal assigning authority could not be told from "
                "another sender's; set MSH-4 in a step before the conversion or fix the sender")
        mapping = mapping or {}
        self._authorities = dict(mapping.get("authorities") or {})
        self._facilities = dict(mapping.get("facilities") or {})
        self._facility = facility
        self._sender = f"{SENDER_PREFIX}{_encoded(facility)}:{_encoded(application)}"
        self._known: dict[tuple[str, str, str, str], tuple[str, bool]] = {}

    @classmethod
    def of(cls, mapping: Mapping[str, Mapping[str, str]] | None, facility: str,
           application: str) -> IdentifierSystems:
        """The rule for one sender and mapping, shared by that sender's messages: what it
        worked out for an authority holds for the next message too (at most ``_SENDERS_MAX``
        senders are kept, then forgotten all at once)."""
        key = (facility, application, _mapping_key(mapping))
        found = _BY_SENDER.get(key)
        if found is None:
            if len(_BY_SENDER) >= _SENDERS_MAX:
                _BY_SENDER.clear()
            found = _BY_SENDER[key] = cls(mapping, facility, application)
        return found

    @property
    def sender(self) -> str:
        """``urn:conduit:sender:<MSH-4>:<MSH-3>``: the sender's own namespace (rule 5)."""
        return self._sender

    def system(self, namespace: str, universal: str, universal_type: str, type_code: str,
               value: str) -> tuple[str, bool]:
        """(system, whether it came from a universal id) for one identifier."""
        key = (namespace, universal, universal_type, type_code)
        found = self._known.get(key)
        if found is None:
            found = self._system(namespace, universal, universal_type, type_code, value)
            if type_code.upper() != "MC":  # the only rule that reads the value
                if len(self._known) >= _KNOWN_MAX:  # kept across messages: bounded
                    self._known.clear()
                self._known[key] = found
        return found

    def _system(self, namespace: str, universal: str, universal_type: str, type_code: str,
                value: str) -> tuple[str, bool]:
        universal_system = system_of(namespace, universal, universal_type) \
            if namespace or universal else None
        if universal_system:
            return REGISTRY_OIDS.get(universal_system, universal_system), True
        known = _well_known(type_code.upper(), namespace.upper(), value)
        if known:
            return known, False
        if namespace:
            mapped = self._authorities.get(namespace)
            return mapped or f"{self._sender}:{_encoded(namespace)}", False
        return self._facilities.get(self._facility) or self._sender, False

    @staticmethod
    def check(mapping: Mapping[str, object] | None) -> dict[str, dict[str, str]]:
        """Validate a channel's ``identifier_systems`` (ValueError naming what is wrong)."""
        out: dict[str, dict[str, str]] = {}
        for key, table in (mapping or {}).items():
            if key not in _MAPPING_KEYS:
                raise ValueError(f"unknown key {key!r}: use authorities and/or facilities")
            if not isinstance(table, Mapping):
                raise ValueError(f"{key} must map names to system URIs")
            for name, system in table.items():
                if not isinstance(system, str) or not _URI.fullmatch(system):
                    raise ValueError(f"{key}.{name}: {system!r} is not an absolute URI "
                                     "(e.g. https://hospital.example.org/fhir/sid/mrn)")
            out[key] = {str(k): v for k, v in table.items()}
        return out


_BY_SENDER: dict[tuple[str, str, tuple[tuple[str, str], ...]], IdentifierSystems] = {}
_SENDERS_MAX = 1024
_KNOWN_MAX = 4096


def _mapping_key(mapping: Mapping[str, Mapping[str, str]] | None) -> tuple[tuple[str, str], ...]:
    """A mapping's content as a key (read per message: a mapping edited in place still counts)."""
    if not mapping:
        return ()
    return tuple((f"{name}\x1f{k}", v) for name in _MAPPING_KEYS
                 for k, v in (mapping.get(name) or {}).items())


@lru_cache(maxsize=4096)
def _encoded(part: str) -> str:
    """A sender or namespace part percent-encoded (the same few senders come again and again)."""
    return quote(part, safe="")


def _well_known(type_code: str, namespace: str, value: str) -> str | None:
    if type_code == "MC":
        compact = value.replace("-", "").upper()
        if _MBI.fullmatch(compact):
            return US_MBI
        if _HICN.fullmatch(compact):
            return US_MEDICARE
        return None
    return _WELL_KNOWN_TYPES.get(type_code) or _WELL_KNOWN_NAMESPACES.get(namespace)

NAMESPACE = uuid.UUID("6f0f3d5e-8a55-5c1e-9d1b-2f8f0c6d1a7e")
"""Conduit's UUID v5 namespace for FHIR resource ids (fixed forever: changing it re-keys data)."""


_PREFIX = NAMESPACE.bytes


def resource_id(resource_type: str, *parts: str) -> str:
    """``resource_id("Patient", "urn:oid:1.2.3", "12345")`` -> a stable UUID string.

    Exactly ``uuid.uuid5(NAMESPACE, name)``, computed without building UUID objects (this runs
    for every resource of every message)."""
    return uuid5_text("\x1f".join((resource_type, *parts)) if parts else resource_type + "\x1f")


def uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` (for callers that join the parts themselves)."""
    h = _NAMESPACED.copy()  # SHA-1 already fed the namespace's 16 bytes
    h.update(name.encode())
    x = h.hexdigest()
    # version 5 in the 13th hex digit, RFC 4122 variant (10xx) in the 17th
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


_NAMESPACED = hashlib.sha1(_PREFIX)
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}

SHARED_KINDS = frozenset({"Location", "Practitioner", "PractitionerRole", "Organization",
                          "Device"})
"""Resource types that name a feed's reference data (its wards, doctors, organizations and
applications): the same few come in message after message, so their ids are remembered
(:func:`shared_id`) instead of hashed again."""

_SHARED: dict[tuple[str, tuple[str, ...]], tuple[str, str]] = {}
_SHARED_MAX = 8192


def shared_id(resource_type: str, parts: tuple[str, ...]) -> tuple[str, str]:
    """(``resource_id(resource_type, *parts)``, ``"Type/id"``), remembered per process for
    the :data:`SHARED_KINDS` (at most ``_SHARED_MAX`` of them, then forgotten all at once)."""
    known = _SHARED.get((resource_type, parts))
    if known is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        rid = resource_id(resource_type, *parts)
        known = _SHARED[resource_type, parts] = (rid, f"{resource_type}/{rid}")
    return known


_OID = re.compile(r"[0-2](\.\d+)+")


@lru_cache(maxsize=1024)
def system_of(namespace: str, universal: str, kind: str) -> str | None:
    """The parts of an HD -> a system URI (OID, UUID or URI), else None (cached per process:
    a feed names the same few assigning authorities and applications again and again)."""
    if universal:
        kind = kind.upper()
        if kind in ("ISO", "OID", "") and _OID.fullmatch(universal):
            return "urn:oid:" + universal
        if kind == "UUID":
            return "urn:uuid:" + universal.lower()
        if kind in ("URI", "URL") or universal.startswith(("http://", "https://", "urn:")):
            return universal
    if not namespace:
        return None
    if _OID.fullmatch(namespace):
        return "urn:oid:" + namespace
    if namespace.startswith(("http://", "https://", "urn:")):
        return namespace
    return None
