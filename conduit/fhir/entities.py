"""Resources many segments point at: Practitioner (XCN), Organization (XON/HD), Location (PL).

Each is made once per message (ids come from their identifiers, else their names) and answered
as a Reference, the way the IG's data-type maps turn XCN into ``Reference(Practitioner)``.
"""

from __future__ import annotations

from collections.abc import Callable

from conduit.fhir import datatypes as dt
from conduit.fhir.context import Conversion, Json
from conduit.fhir.v2 import Field

__all__ = ["location", "organization", "organization_from_hd", "organization_of", "practitioner",
           "practitioner_role"]


def practitioner(ctx: Conversion, f: Field) -> Json | None:
    """XCN -> Reference(Practitioner)."""
    if not f:
        return None
    return _once(ctx, "XCN", f, _practitioner)


def _once(ctx: Conversion, kind: str, f: Field,
          make: Callable[[Conversion, Field], Json | None]) -> Json | None:
    """``make(ctx, f)`` once per message for the same field text (a doctor named in PV1 and
    in each OBX): the same text gives the same resource and the same key, so adding it again
    would change nothing. A fresh Reference dict each time (callers may add to it)."""
    key = (kind, f.raw, f.is_component)  # the same text split at ^ or at & reads differently
    known = ctx.entities.get(key, _UNSEEN)
    if known is _UNSEEN:
        known = ctx.entities[key] = make(ctx, f)
    return dict(known) if known is not None else None


_UNSEEN: Json = {}  # not made yet (None is a made "nothing")


def _practitioner(ctx: Conversion, f: Field) -> Json | None:
    body: Json = {}
    # XCN.13 the type, and no period: XCN.7/8 (degree, source table) are not CX.7/8's dates
    ident = dt.identifier(f, f.components()[13], 9, 0, ctx.systems)  # authority XCN.9, no kind
    if ident:
        body["identifier"] = [ident]
    name = dt.person_name(f)
    if name:
        body["name"] = [name]
    if not body:
        return None
    key = (dt.identifier_key(ident),) if ident else ctx.sender_key("name|" + f.raw)
    return ctx.add_ref("Practitioner", key, body)


def practitioner_role(ctx: Conversion, who: Json | None, where: Json | None = None,
                      code: Json | None = None) -> Json | None:
    """A practitioner acting for an organization and/or in a role -> Reference(PractitionerRole),
    as the IG maps ORC-12/ORC-21, OBX-16/OBX-25 and OBR-32/34/35; keyed by what it joins."""
    if who is None and where is None:
        return None
    body: Json = {}
    if who is not None:
        body["practitioner"] = who
    if where is not None:
        body["organization"] = where
    if code is not None:
        body["code"] = [code]
    key: tuple[str, ...] = ((who or {}).get("reference", ""), (where or {}).get("reference", ""))
    if code is not None:
        key += tuple([f"{c.get('system', '')}|{c.get('code', '')}"
                      for c in code.get("coding", ())])
    return ctx.add_ref("PractitionerRole", key, body)


def organization(ctx: Conversion, f: Field) -> Json | None:
    """XON (name ^ type ^ id ^ ... ^ assigning authority(6) ^ ... ^ identifier(10)) -> Reference."""
    value, authority = f[10] or f[3], f.subcomponents(6)
    system = ctx.systems.system(authority[1], authority[2], authority[3], f[7], value)[0] \
        if value else None
    return organization_of(ctx, f[1], value, system)


def organization_of(ctx: Conversion, name: str, ident_value: str,
                    system: str | None) -> Json | None:
    """An Organization from its name and/or identifier (text already decoded); an identifier
    without a system takes the sender's (:mod:`conduit.fhir.ids`), a name alone is the
    sender's organization of that name."""
    if not name and not ident_value:
        return None
    body: Json = {}
    if ident_value:
        system = system or ctx.systems.sender
        body["identifier"] = [{"value": ident_value, "system": system}]
    if name:
        body["name"] = name
    key = ((f"id|{system}|{ident_value}",) if ident_value
           else ctx.sender_key("name|" + name))
    return ctx.add_ref("Organization", key, body)


def organization_from_hd(ctx: Conversion, hd: Field) -> Json | None:
    """HD (e.g. MSH-4 sending facility) -> Reference(Organization)."""
    return _once(ctx, "HD", hd, _organization_from_hd)  # MSH-4: the header and the Provenance


def _organization_from_hd(ctx: Conversion, hd: Field) -> Json | None:
    namespace, universal = hd[1], hd[2]
    if not namespace and not universal:
        return None
    body: Json = {}
    system = dt.system_of(namespace, universal, hd[3])
    if system:
        body["identifier"] = [{"system": "urn:ietf:rfc:3986", "value": system}]
    if namespace:
        body["name"] = namespace
    key = ("hd|" + system,) if system else ctx.sender_key("hd|" + namespace)
    return ctx.add_ref("Organization", key, body)


_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
_LEVELS = (  # PL component, FHIR physical type (location-physical-type)
    (4, "si"), (7, "bu"), (8, "lvl"), (1, "wa"), (2, "ro"), (3, "bd"))


def location(ctx: Conversion, pl: Field) -> Json | None:
    """PL -> Reference(Location) of its most specific part, each part ``partOf`` the one above.

    The IG makes one Location per PL component (facility, building, floor, point of care, room,
    bed), which keeps "bed 3 of room 12" findable as a bed and as part of the room.
    """
    return _once(ctx, "PL", pl, _location)


def _location(ctx: Conversion, pl: Field) -> Json | None:
    parent: Json | None = None
    c = pl.components()  # c[i] is pl[i]
    described = _most_specific(c) if c[9] else -1  # PL.9 describes the most specific part
    key = ctx.sender_key()  # + one "kind=value" per level, the path down to this part
    for component, kind in _LEVELS:
        value = c[component]
        if not value:
            continue
        key += (f"{kind}={value}",)
        body: Json = {
            "name": value, "mode": "instance",
            "physicalType": {"coding": [{"system": _PHYSICAL_TYPE, "code": kind}]},
        }
        if parent is not None:
            body["partOf"] = parent
        if kind == "bd" and c[5]:
            body["operationalStatus"] = dt.coding(
                c[5], "", "http://terminology.hl7.org/CodeSystem/v2-0116")
        if component == described:
            body["description"] = c[9]
        parent = ctx.add_ref("Location", key, body)
    return parent


def _most_specific(c: list[str]) -> int:
    """The most specific PL component present (bed, room, point of care, floor...), of a
    PL's components."""
    for component in (3, 2, 1, 8, 7, 4):
        if c[component]:
            return component
    return 0
