"""Whose data each resource is, so that a v2 message never carries one patient's data under
another's PID.

Every Encounter, Observation and DiagnosticReport must name its subject, and in a Bundle that
subject must be a Patient of the Bundle (by reference, or by an identifier only one resource
has). A report's results, and the encounter a result or report points at, must be the same
patient's. Anything else is refused with an error naming the resource (type, id, entry), never
a patient's values: sending it under whichever Patient happens to be there would be a guess.

A single resource that is not a Bundle (an Observation POSTed alone) is sent under the subject
it names: its identifier, else the id of its reference (PID-3 type PI).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conduit.core.errors import MessageError
from conduit.fhir.tov2.resolve import Index

Json = dict[str, Any]

__all__ = ["ConversionError", "PatientData", "by_patient"]

_CLINICAL = ("Encounter", "DiagnosticReport", "Observation")


class ConversionError(MessageError):
    """The FHIR content cannot be written as v2 safely (no Patient, a subject elsewhere...)."""


@dataclass(slots=True)
class PatientData:
    """One patient and the resources that are theirs, in Bundle order."""

    patient: Json
    encounters: list[Json] = field(default_factory=list)
    reports: list[Json] = field(default_factory=list)
    observations: list[Json] = field(default_factory=list)
    stand_in: bool = False
    """The patient is only what a lone resource's subject says (no Patient resource)."""


def by_patient(index: Index) -> list[PatientData]:
    """The patients of ``index`` with their resources; ConversionError when a resource's patient
    is missing, not a Patient, or not the one its report or encounter belongs to."""
    groups = {id(p): PatientData(p) for p in index.all("Patient")}
    owner_of: dict[int, int] = {}
    for resource in index.resources:
        kind = resource.get("resourceType")
        if kind not in _CLINICAL:
            continue
        patient = _subject(index, resource)
        key = id(patient)
        if key not in groups:  # a lone resource's stand-in patient
            groups[key] = PatientData(patient, stand_in=True)
        owner_of[id(resource)] = key
        group = groups[key]
        if kind == "Encounter":
            group.encounters.append(resource)
        elif kind == "DiagnosticReport":
            group.reports.append(resource)
        else:
            group.observations.append(resource)
    for resource in index.resources:
        if resource.get("resourceType") in ("DiagnosticReport", "Observation"):
            _same_patient(index, resource, owner_of)
    return list(groups.values())


def _subject(index: Index, resource: Json) -> Json:
    name = index.name(resource)
    subject = resource.get("subject")
    if not isinstance(subject, dict) or not (subject.get("reference")
                                             or subject.get("identifier")):
        raise ConversionError(f"{name} has no subject: whose data it is cannot be told")
    if not index.is_bundle:
        return _stand_in(subject)
    found = index.resolve(subject)
    if found is None:
        raise ConversionError(
            f"{name}: its subject is not in the Bundle (it is never sent under another "
            "Patient; include the Patient)")
    if found.get("resourceType") != "Patient":
        raise ConversionError(f"{name}: its subject is a {found.get('resourceType')}, not a "
                              "Patient")
    return found


def _stand_in(subject: Json) -> Json:
    """PID-3 from what a lone resource's subject says: its identifier, else its id."""
    if isinstance(subject.get("identifier"), dict) and subject["identifier"].get("value"):
        return {"resourceType": "Patient", "identifier": [subject["identifier"]]}
    return {"resourceType": "Patient",
            "id": str(subject.get("reference") or "").rstrip("/").split("/")[-1]}


def _same_patient(index: Index, resource: Json, owner_of: dict[int, int]) -> None:
    """A report's results and a result's encounter are its own patient's."""
    name, mine = index.name(resource), owner_of[id(resource)]
    encounter = index.resolve(resource.get("encounter"))
    if encounter is not None and owner_of.get(id(encounter), mine) != mine:
        raise ConversionError(f"{name}: its encounter {index.name(encounter)} belongs to "
                              "another patient")
    if resource.get("resourceType") != "DiagnosticReport":
        return
    for n, reference in enumerate(resource.get("result", ()), start=1):
        result = index.resolve(reference)
        if result is None:
            raise ConversionError(f"{name}: its result {n} is not in the Bundle (the report "
                                  "would be sent without it)")
        if result.get("resourceType") != "Observation":
            raise ConversionError(f"{name}: its result {index.name(result)} is not an "
                                  "Observation")
        if owner_of.get(id(result)) != mine:
            raise ConversionError(f"{name}: its result {index.name(result)} belongs to "
                                  "another patient")
