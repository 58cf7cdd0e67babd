"""Which segment map handles which segment (what :mod:`conduit.fhir.convert` dispatches on).

A segment with no map (EVN, GT1, Z-segments...) is passed over.
"""

from __future__ import annotations

from collections.abc import Callable

from conduit.fhir.context import Conversion
from conduit.fhir.segments import (
    allergy,
    appointment,
    charge,
    condition,
    coverage,
    death,
    document,
    encounter,
    guarantor,
    immunization,
    observation,
    order,
    patient,
    procedure,
    referral,
    related,
    specimen,
)
from conduit.fhir.v2 import Seg

MAPS: dict[str, Callable[[Conversion, Seg], None]] = {
    "PID": patient.pid,
    "PD1": patient.pd1,
    "MRG": patient.mrg,
    "DB1": patient.db1,
    "GT1": guarantor.gt1,
    "IN2": coverage.in2,
    "NK1": related.nk1,
    "PV1": encounter.pv1,
    "PV2": encounter.pv2,
    "ORC": order.orc,
    "OBR": order.obr,
    "OBX": observation.obx,
    "NTE": observation.nte,
    "AL1": allergy.al1,
    "IAM": allergy.iam,
    "DG1": condition.dg1,
    "PDA": death.pda,
    "PR1": procedure.pr1,
    "FT1": charge.ft1,
    "RF1": referral.rf1,
    "IN1": coverage.in1,
    "RXA": immunization.rxa,
    "RXR": immunization.rxr,
    "SCH": appointment.sch,
    "AIS": appointment.ais,
    "AIL": appointment.ail,
    "AIP": appointment.aip,
    "AIG": appointment.aig,
    "TXA": document.txa,
    "SPM": specimen.spm,
}
