"""The hl7-version step."""

from __future__ import annotations

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from conduit.hl7.message import Message
from conduit.transforms.hl7_version import Hl7Version, Hl7VersionOptions, structure
from conduit.transforms.registry import StepState

V23 = ("MSH|^~\\&|REG|H|EHR|H|20240101120000||ADT^A04|1|P|2.3\r"
       "EVN|A04|20240101120000\r"
       "PID|1||42^^^H^MR||DOE^JO||19700101|M|||1 Main St^^Town^ST^00000||555-0100\r"
       "PV1|1|O|CLINIC^1^1\rZPI|kept|as|is\r")


def test_structure_names() -> None:
    assert structure("ADT^A04") == "ADT_A01"
    assert structure("ADT^A40") == "ADT_A39"
    assert structure("ORU^R01") == "ORU_R01"


def test_upgrade_to_251_sets_version_and_structure_and_stays_valid() -> None:
    s = StepState(Message.parse(V23))
    Hl7Version(Hl7VersionOptions(to="2.5.1"))(s)
    m = s.message
    assert m["MSH-12"] == "2.5.1"
    assert m["MSH-9"] == "ADT^A04^ADT_A01"
    assert m["PID-5"] == "DOE^JO"
    assert m["ZPI-1"] == "kept"
    text = m.encode().replace("ZPI|kept|as|is\r", "")
    parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True).validate()


def test_downgrade_drops_what_the_old_version_lacks() -> None:
    v28 = ("MSH|^~\\&|REG|H|EHR|H|20240101120000||ADT^A04^ADT_A01|1|P|2.8\r"
           "EVN||20240101120000\rPID|1||42^^^H^MR||DOE^JO|||||||||||||||||||||||||||||||"
           "||||||555-0100^PRN^PH\rPV1|1|O\r")
    s = StepState(Message.parse(v28))
    Hl7Version(Hl7VersionOptions(to="2.3"))(s)
    m = s.message
    assert m["MSH-9"] == "ADT^A04"
    assert m["MSH-12"] == "2.3"
    assert m.get("PID-40") == ""  # PID-40 came with 2.7
    assert m["PID-3.1"] == "42"


def test_only_header_when_fields_false() -> None:
    s = StepState(Message.parse(V23))
    Hl7Version(Hl7VersionOptions(to="2.5.1", fields=False))(s)
    assert s.message.encode().split("\r")[1:] == V23.split("\r")[1:]
