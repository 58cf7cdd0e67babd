"""HL7 v2 shown as segments and fields with their names, for the message view.

A small table of the common segments' field names (HL7 v2.5); other fields show their position
only. Anything that is not HL7 v2 is shown as text.
"""

from __future__ import annotations

from typing import Any

from conduit.hl7.message import segment_lines

SEGMENTS: dict[str, tuple[str, list[str]]] = {
    "MSH": ("Message Header", [
        "Field Separator", "Encoding Characters", "Sending Application", "Sending Facility",
        "Receiving Application", "Receiving Facility", "Date/Time of Message", "Security",
        "Message Type", "Message Control ID", "Processing ID", "Version ID", "Sequence Number",
        "Continuation Pointer", "Accept Acknowledgment Type", "Application Acknowledgment Type",
        "Country Code", "Character Set", "Principal Language of Message"]),
    "EVN": ("Event Type", [
        "Event Type Code", "Recorded Date/Time", "Date/Time Planned Event",
        "Event Reason Code", "Operator ID", "Event Occurred", "Event Facility"]),
    "PID": ("Patient Identification", [
        "Set ID", "Patient ID", "Patient Identifier List", "Alternate Patient ID",
        "Patient Name", "Mother's Maiden Name", "Date/Time of Birth", "Administrative Sex",
        "Patient Alias", "Race", "Patient Address", "County Code", "Phone Number - Home",
        "Phone Number - Business", "Primary Language", "Marital Status", "Religion",
        "Patient Account Number", "SSN Number", "Driver's License Number",
        "Mother's Identifier", "Ethnic Group", "Birth Place", "Multiple Birth Indicator",
        "Birth Order", "Citizenship", "Veterans Military Status", "Nationality",
        "Patient Death Date and Time", "Patient Death Indicator"]),
    "PD1": ("Patient Additional Demographic", [
        "Living Dependency", "Living Arrangement", "Patient Primary Facility",
        "Patient Primary Care Provider", "Student Indicator", "Handicap",
        "Living Will Code", "Organ Donor Code"]),
    "NK1": ("Next of Kin", [
        "Set ID", "Name", "Relationship", "Address", "Phone Number",
        "Business Phone Number", "Contact Role", "Start Date", "End Date"]),
    "PV1": ("Patient Visit", [
        "Set ID", "Patient Class", "Assigned Patient Location", "Admission Type",
        "Preadmit Number", "Prior Patient Location", "Attending Doctor", "Referring Doctor",
        "Consulting Doctor", "Hospital Service", "Temporary Location", "Preadmit Test Indicator",
        "Re-admission Indicator", "Admit Source", "Ambulatory Status", "VIP Indicator",
        "Admitting Doctor", "Patient Type", "Visit Number", "Financial Class"]),
    "PV2": ("Patient Visit - Additional", [
        "Prior Pending Location", "Accommodation Code", "Admit Reason", "Transfer Reason"]),
    "ORC": ("Common Order", [
        "Order Control", "Placer Order Number", "Filler Order Number", "Placer Group Number",
        "Order Status", "Response Flag", "Quantity/Timing", "Parent", "Date/Time of Transaction",
        "Entered By", "Verified By", "Ordering Provider"]),
    "OBR": ("Observation Request", [
        "Set ID", "Placer Order Number", "Filler Order Number", "Universal Service Identifier",
        "Priority", "Requested Date/Time", "Observation Date/Time", "Observation End Date/Time",
        "Collection Volume", "Collector Identifier", "Specimen Action Code", "Danger Code",
        "Relevant Clinical Information", "Specimen Received Date/Time", "Specimen Source",
        "Ordering Provider", "Order Callback Phone Number", "Placer Field 1", "Placer Field 2",
        "Filler Field 1", "Filler Field 2", "Results Rpt/Status Chng", "Charge to Practice",
        "Diagnostic Serv Sect ID", "Result Status"]),
    "OBX": ("Observation/Result", [
        "Set ID", "Value Type", "Observation Identifier", "Observation Sub-ID",
        "Observation Value", "Units", "References Range", "Abnormal Flags", "Probability",
        "Nature of Abnormal Test", "Observation Result Status", "Effective Date of Reference "
        "Range", "User Defined Access Checks", "Date/Time of the Observation",
        "Producer's ID", "Responsible Observer", "Observation Method"]),
    "NTE": ("Notes and Comments", ["Set ID", "Source of Comment", "Comment", "Comment Type"]),
    "AL1": ("Patient Allergy Information", [
        "Set ID", "Allergen Type Code", "Allergen Code", "Allergy Severity Code",
        "Allergy Reaction Code", "Identification Date"]),
    "DG1": ("Diagnosis", [
        "Set ID", "Diagnosis Coding Method", "Diagnosis Code", "Diagnosis Description",
        "Diagnosis Date/Time", "Diagnosis Type"]),
    "IN1": ("Insurance", [
        "Set ID", "Insurance Plan ID", "Insurance Company ID", "Insurance Company Name",
        "Insurance Company Address", "Insurance Co Contact Person", "Insurance Co Phone Number",
        "Group Number", "Group Name"]),
    "MSA": ("Message Acknowledgment", [
        "Acknowledgment Code", "Message Control ID", "Text Message",
        "Expected Sequence Number", "Delayed Acknowledgment Type", "Error Condition"]),
    "ERR": ("Error", [
        "Error Code and Location", "Error Location", "HL7 Error Code", "Severity",
        "Application Error Code", "Application Error Parameter", "Diagnostic Information",
        "User Message"]),
    "SCH": ("Scheduling Activity Information", [
        "Placer Appointment ID", "Filler Appointment ID", "Occurrence Number",
        "Placer Group Number", "Schedule ID", "Event Reason", "Appointment Reason",
        "Appointment Type", "Appointment Duration", "Appointment Duration Units",
        "Appointment Timing Quantity"]),
    "MRG": ("Merge Patient Information", [
        "Prior Patient Identifier List", "Prior Alternate Patient ID",
        "Prior Patient Account Number", "Prior Patient ID", "Prior Visit Number",
        "Prior Alternate Visit ID", "Prior Patient Name"]),
}


def field_name(segment: str, position: int) -> str | None:
    names = SEGMENTS.get(segment, ("", []))[1]
    return names[position - 1] if 0 < position <= len(names) else None


def parse_segments(text: str) -> list[dict[str, Any]] | None:
    """Segments with named fields, or None when ``text`` is not HL7 v2 ER7."""
    lines = [s for s in segment_lines(text) if s.strip()]
    if not lines or not lines[0].startswith(("MSH", "FHS", "BHS")) or len(lines[0]) < 8:
        return None
    separator = lines[0][3]
    result = []
    for line in lines:
        parts = line.split(separator)
        name = parts[0][:3]
        fields = []
        if name in ("MSH", "FHS", "BHS"):
            fields.append({"position": f"{name}-1", "name": field_name(name, 1),
                           "value": separator})
            offset = 1
        else:
            offset = 0
        for index, value in enumerate(parts[1:], start=1):
            position = index + offset
            if value == "":
                continue
            fields.append({"position": f"{name}-{position}",
                           "name": field_name(name, position), "value": value})
        result.append({"name": name, "title": SEGMENTS.get(name, ("", []))[0],
                       "fields": fields})
    return result


def stage_view(title: str, content: bytes | None) -> dict[str, Any]:
    text = "" if content is None else content.decode("utf-8", errors="replace")
    return {"title": title, "text": text, "segments": parse_segments(text)}
