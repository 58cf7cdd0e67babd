"""HL7-aware Jinja2 filters for dates and code systems (added to Conduit's one environment).

Dates::

    {{ msg['PID-7'] | fhir_date }}               19800101120000 -> 1980-01-01
    {{ msg['OBX-14'] | fhir_datetime }}          keeps precision and offset; none: the host's
    {{ msg['OBX-14'] | fhir_datetime('Europe/Berlin') }}   ... or the zone named
    {{ msg['PID-7'] | hl7_strftime('%d/%m/%Y') }}  01/01/1980
    {{ vars.body.birthDate | hl7_datetime }}     1980-01-01 -> 19800101 (FHIR/ISO -> DTM)

Code systems::

    {{ msg['OBX-3.3'] | fhir_system }}           LN -> http://loinc.org
    {{ coding.system | hl7_system }}             http://loinc.org -> LN

A value that is not a date gives ``""`` rather than an error, like a missing field does. Code
lookups against tables are the ``lookup`` step's job (read once at load, result in
``vars.NAME`` for templates to use).
"""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment

from conduit.fhir.codesystems import system_uri
from conduit.fhir.datatypes import _parts, date, datetime_
from conduit.fhir.tov2.datatypes import dtm, system_name

__all__ = ["register"]


def fhir_date(value: object) -> str:
    return date(str(value)) or ""


def fhir_datetime(value: object, zone: str | None = None) -> str:
    """A time without an offset is read in ``zone`` (IANA name or +HH:MM), else the engine's
    default zone, else the host's: never labelled UTC by assumption."""
    from conduit.core.timezone import default_zone, host_zone
    from conduit.fhir.context import zone as parse_zone

    return datetime_(str(value), parse_zone(zone or default_zone() or host_zone())) or ""


def hl7_datetime(value: object) -> str:
    return dtm(str(value))


def hl7_strftime(value: object, fmt: str = "%Y-%m-%d") -> str:
    """An HL7 DTM formatted with ``strftime`` (missing parts count as their first value)."""
    parts = _parts(str(value))
    if parts is None:
        return ""
    y, mo, d, h, mi, s = (int(p) if p else default
                          for p, default in zip(parts[:6], (0, 1, 1, 0, 0, 0), strict=True))
    try:
        return datetime(y, mo, d, h, mi, s).strftime(fmt)
    except ValueError:
        return ""


def fhir_system(value: object) -> str:
    return system_uri(str(value)) or ""


def hl7_system(value: object) -> str:
    return system_name(str(value))


def register(env: Environment) -> None:
    """Add the filters to ``env``."""
    env.filters.update(fhir_date=fhir_date, fhir_datetime=fhir_datetime,
                       hl7_datetime=hl7_datetime, hl7_strftime=hl7_strftime,
                       fhir_system=fhir_system, hl7_system=hl7_system)
