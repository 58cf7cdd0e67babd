"""The ``hl7v2-to-fhir`` step: the message becomes a FHIR R4 Bundle (JSON), the outbound body.

Conversion builds plain dicts and writes them with orjson (~10x faster than building
fhir.resources models); ``validate: true`` additionally checks the Bundle against the R4B models
and fails the step, naming the element and rule, when it is not valid.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Literal

from pydantic import Field, field_validator

from conduit.core.errors import MessageError, ValidationError
from conduit.core.registry import step
from conduit.fhir import ConvertOptions, convert, dumps
from conduit.fhir.context import zone
from conduit.fhir.ids import IdentifierSystems
from conduit.transforms.registry import StepOptions, StepState

_NON_ASCII = re.compile(r"[^\x00-\x7f]")


class IdentifierSystemsOptions(StepOptions):
    """Which Identifier.system the identifiers of this channel's senders get (rule: the module
    docstring of conduit/fhir/ids.py)."""

    authorities: dict[str, str] = Field(
        default_factory=dict,
        description="Assigning-authority namespace (CX.4.1, XCN.9.1, EI.2, as sent) -> system "
                    "URI, for authorities without a universal id (OID/URI). The namespace is "
                    "then one authority whichever facility sends it.",
        examples=[{"HOSPA": "https://hospa.example.org/fhir/sid/mrn",
                   "LABCORP": "https://labcorp.example.com/fhir/sid/accession"}])
    facilities: dict[str, str] = Field(
        default_factory=dict,
        description="Sending facility (MSH-4.1) -> system URI, for identifiers that name no "
                    "assigning authority at all (an MRN sent as 12345^^^^MR). Unmapped, they "
                    "get urn:conduit:sender:<MSH-4>:<MSH-3>.",
        examples=[{"ST_MARY": "https://stmary.example.org/fhir/sid/mrn"}])

    @field_validator("authorities", "facilities")
    @classmethod
    def _uris(cls, value: dict[str, str], info: object) -> dict[str, str]:
        IdentifierSystems.check({getattr(info, "field_name", "authorities"): value})
        return value


class Hl7v2ToFhirOptions(StepOptions):
    """Convert the HL7 v2 message to a FHIR R4 Bundle (Patient, Encounter, Observation...)."""

    bundle: Literal["transaction", "batch"] = Field(
        "transaction",
        description="Bundle type. Every entry is a PUT with a deterministic id either way; a "
                    "transaction applies all or nothing, a batch entry by entry.",
        examples=["transaction", "batch"])
    conditional: bool = Field(
        False,
        description="Transactions only: PUT resources that carry an identifier with a system "
                    "(Patient, Encounter, Practitioner...) as conditional updates "
                    "(Type?identifier=system|value), so the server updates the one it holds "
                    "under that identifier whatever its id; references use urn:uuid fullUrls.")
    timezone: str | None = Field(
        None,
        description="Time zone of the sender's clock for times sent without an offset: an "
                    "IANA name or +HH:MM. Unset: the channel's 'timezone', else the engine "
                    "default zone, else the host's zone (never UTC by assumption). When MSH-7 "
                    "carries an offset the zone does not have at that time, MSH-7's offset is "
                    "used.",
        examples=["Europe/Berlin", "-05:00"])
    identifier_systems: IdentifierSystemsOptions | None = Field(
        None,
        description="Map assigning authorities (by namespace) and sending facilities (MSH-4) to "
                    "Identifier.system URIs. Without a mapping, an identifier whose authority "
                    "has no OID/URI gets a system naming its sender, "
                    "urn:conduit:sender:<MSH-4>:<MSH-3>[:<namespace>], so MRN 12345 from two "
                    "facilities is two Patients; SSN, NPI and Medicare numbers get their "
                    "hl7.org/fhir/sid systems.",
        examples=[{"authorities": {"HOSPA": "https://hospa.example.org/fhir/sid/mrn"},
                   "facilities": {"ST_MARY": "https://stmary.example.org/fhir/sid/mrn"}}])
    validate_: bool = Field(
        False, alias="validate",
        description="Also validate the Bundle against the FHIR R4B models (about 10x slower); "
                    "an invalid Bundle fails the step.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        zone(value)
        return value


@step("hl7v2-to-fhir", Hl7v2ToFhirOptions, needs=("hl7v2",), produces="fhir",
      summary="ADT, ORU, ORM/OML, SIU, VXU, MDM, DFT/BAR → a FHIR R4 transaction or batch Bundle, "
              "after the HL7 v2-to-FHIR IG; ids deterministic from business identifiers, so a "
              "resend updates")
class Hl7v2ToFhir:
    """Convert the HL7 v2 message to a FHIR R4 Bundle (Patient, Encounter, Observation...)."""

    def __init__(self, options: Hl7v2ToFhirOptions) -> None:
        self.label = f"hl7v2-to-fhir {options.bundle}"
        systems = options.identifier_systems
        self._options = ConvertOptions(
            bundle_type=options.bundle, timezone=options.timezone,
            conditional=options.conditional,
            identifier_systems=systems.model_dump() if systems is not None else None)
        self._validate = options.validate_
        self._by_zone: dict[tuple[str | None, str | None], ConvertOptions] = {}

    def _options_for(self, state: StepState) -> ConvertOptions:
        """The step's own zone wins; else the channel's, and the engine's/host's as fallback."""
        key = (self._options.timezone or state.timezone, state.default_timezone)
        options = self._by_zone.get(key)
        if options is None:
            options = self._by_zone[key] = replace(self._options, timezone=key[0],
                                                   default_timezone=key[1])
        return options

    def __call__(self, state: StepState) -> None:
        if state.message is None:
            raise MessageError("hl7v2-to-fhir needs an HL7 v2 message (data_type: hl7v2)")
        bundle = convert(state.message, self._options_for(state))
        if self._validate:
            from conduit.fhir.validate import bundle_problems

            problems = bundle_problems(bundle)
            if problems:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                raise ValidationError(f"FHIR Bundle invalid: {problems[0]}{more}")
        text = dumps(bundle).decode("utf-8")
        encoding = (state.message.encoding or "utf-8").replace("_", "-").lower()
        if encoding not in ("utf-8", "utf8", "ascii", "us-ascii") and _NON_ASCII.search(text):
            # the pipeline encodes the body in the message's charset; JSON must stay UTF-8
            # readable, so non-ASCII goes out as \u escapes, which every charset carries
            text = _NON_ASCII.sub(_json_escape, text)
        state.body = text


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"
