"""Chapter 2 acceptance rules without sockets: what MSH-15/16 ask for, the header check with its
table 0357 codes, the ACKs each outcome gets, and where ERR puts the error location."""

from __future__ import annotations

import pytest

from conduit.core.errors import HL7ParseError
from conduit.hl7.acceptance import (
    AckRequest,
    asked_for,
    assess,
    check_header,
    error_code_for_problem,
    is_acknowledgement,
    requested_acks,
)
from conduit.hl7.ack import build_ack, build_ack_for_unparseable
from conduit.hl7.message import Message
from conduit.hl7.replies import Outcome, replies


def msg(msh: str) -> Message:
    return Message.parse(msh + "\rPID|1||42^^^H\r")


BASE = "MSH|^~\\&|A|F|B|G|20260101||ADT^A01|C1|P|2.5.1"


def codes(answers: list[bytes]) -> list[str]:
    return [Message.parse(a).get("MSA-1") for a in answers]


@pytest.mark.parametrize("accept, application, enhanced", [
    ("", "", False), ("AL", "", True), ("", "NE", True), ("ne", "al", True)])
def test_requested_acks_reads_msh15_and_msh16(accept: str, application: str,
                                              enhanced: bool) -> None:
    request, refusal = requested_acks(msg(f"{BASE}|||{accept}|{application}"))
    assert refusal is None
    assert request.enhanced is enhanced
    assert request.accept == (accept.upper() or None)


def test_acknowledgment_type_outside_table_0155_is_103_and_answered_always() -> None:
    request, refusal = requested_acks(msg(f"{BASE}|||AL|YES"))
    assert refusal is not None and (refusal.error_code, refusal.location) == (
        "103", ("MSH", 1, 16))
    assert request == AckRequest("AL", "AL")


@pytest.mark.parametrize("outcome, request_, expected", [
    (Outcome(True, True), AckRequest(), ["AA"]),
    (Outcome(True, False, "failed"), AckRequest(), ["AE"]),
    (Outcome(False, False, "no store"), AckRequest(), ["AE"]),
    (Outcome(False, False, "bad", "202", refused=True), AckRequest(), ["AR"]),
    (Outcome(True, True), AckRequest("AL", "AL"), ["CA", "AA"]),
    (Outcome(True, False, "failed"), AckRequest("AL", "AL"), ["CA", "AE"]),
    (Outcome(True, False, "failed"), AckRequest("SU", "ER"), ["CA", "AE"]),
    (Outcome(True, True), AckRequest("ER", "ER"), []),
    (Outcome(False, False, "no store"), AckRequest("AL", "AL"), ["CE"]),
    (Outcome(False, False, "no store"), AckRequest("SU", "AL"), ["AE"]),
    (Outcome(False, False, "no store"), AckRequest("SU", "SU"), []),
    (Outcome(False, False, "bad", "203", refused=True), AckRequest("ER", "AL"), ["CR"]),
    (Outcome(False, False, "bad", "203", refused=True), AckRequest("NE", "ER"), ["AR"]),
    (Outcome(True, True), AckRequest("NE", "NE"), []),
])
def test_replies_follow_the_outcome_and_table_0155(outcome: Outcome, request_: AckRequest,
                                                   expected: list[str]) -> None:
    assert codes(replies(msg(BASE), request_, outcome)) == expected


def test_commit_error_carries_207_and_the_reason() -> None:
    [ce] = replies(msg(BASE), AckRequest("AL", "AL"), Outcome(False, False, "store down"))
    ack = Message.parse(ce)
    assert ack.get("MSA-1") == "CE" and ack.get("MSA-3") == "store down"
    assert ack.get("ERR-3") == "207^store down^HL70357"


@pytest.mark.parametrize("msh, code, location", [
    ("MSH|^~\\&|A|F|B|G|20260101|||C1|P|2.5.1", "101", ("MSH", 1, 9)),
    ("MSH|^~\\&|A|F|B|G|20260101||ADT^A01||P|2.5.1", "101", ("MSH", 1, 10)),
    ("MSH|^~\\&|A|F|B|G|20260101||ADT^A01|C1|P|", "101", ("MSH", 1, 12)),
    ("MSH|^~\\&|A|F|B|G|20260101||ADT^A01|C1|Q|2.5.1", "202", ("MSH", 1, 11)),
    ("MSH|^~\\&|A|F|B|G|20260101||ADT^A01|C1|P|3.0", "203", ("MSH", 1, 12)),
])
def test_check_header_names_code_and_field(msh: str, code: str,
                                           location: tuple[str | int, ...]) -> None:
    refusal = check_header(msg(msh))
    assert refusal is not None
    assert (refusal.error_code, refusal.location) == (code, location)


@pytest.mark.parametrize("msh", [BASE, "MSH|^~\\&|A|F|B|G|2026||ADT^A01|C1||2.3",
                                 "MSH|^~\\&|A|F|B|G|2026||ORU^R01|C1|T|2.8.2"])
def test_check_header_accepts_ordinary_headers(msh: str) -> None:
    assert check_header(msg(msh)) is None


def test_channel_lists_of_types_and_processing_ids() -> None:
    oru = msg("MSH|^~\\&|A|F|B|G|2026||ORU^R01|C1|T|2.5")

    def code(**lists: list[str]) -> str | None:
        refusal = check_header(oru, **lists)
        return refusal.error_code if refusal else None

    assert code(message_types=["ADT"]) == "200"
    assert code(message_types=["ORU^R30"]) == "201"
    assert code(message_types=["ORU^R01"]) is None
    assert code(processing_ids=["P"]) == "202"


def test_an_ack_message_is_recognised() -> None:
    assert is_acknowledgement(msg("MSH|^~\\&|A|F|B|G|2026||ACK^A01^ACK|C1|P|2.5"))
    assert not is_acknowledgement(msg(BASE))


@pytest.mark.parametrize("problem, code", [
    ("Missing required child ADT_A01.PID", "101"),
    ("warning: value not in table HL70001 in element PID_8", "103"),
    ("message structure 'ZZZ_Z01' is not defined in HL7 2.5", "200"),
    ("segment PID has more fields than HL7 2.5 defines", "102"),
    ("Child limit exceeded ADT_A01.PID", "100"),
    ("Invalid children detected for <Message ADT_A01>: [EVN]", "100"),
    ("something else entirely", "207"),
])
def test_strict_validation_problems_map_to_table_0357(problem: str, code: str) -> None:
    assert error_code_for_problem(problem) == code


def test_err2_location_from_v25_and_err1_before() -> None:
    new = build_ack(msg(BASE), "AR", "missing", error_code="101",
                    error_location=("MSH", 1, 9, 2))
    assert new.get("ERR-2") == "MSH^1^9^^2"
    assert new.get("ERR-3") == "101^missing^HL70357"
    old = build_ack(msg("MSH|^~\\&|A|F|B|G|2026||ADT^A01||P|2.3"), "AR", "missing",
                    error_code="101", error_location=("MSH", 1, 10))
    assert old.get("ERR-1") == "MSH^1^10^101&missing&HL70357"


def test_parse_errors_carry_their_code_and_location() -> None:
    cases = {b"PID|1\rMSH|^~\\&|A\r": ("100", ("MSH", 1)),
             b"MSH|^~\\&&&|A|B\r": ("102", ("MSH", 1, 2)),
             b"MSH": ("102", ("MSH", 1, 1)),
             b"\x00\x01\x02 binary": ("102", None)}
    for raw, (code, location) in cases.items():
        with pytest.raises(HL7ParseError) as caught:
            Message.parse(raw)
        assert (caught.value.error_code, caught.value.location) == (code, location), raw
        answer = Message.parse(build_ack_for_unparseable(
            raw, str(caught.value), error_code=code, error_location=location) or b"")
        assert answer.get("ERR-3.1") == code


def test_processing_id_is_read_in_any_case() -> None:
    assert check_header(msg("MSH|^~\\&|A|F|B|G|2026||ADT^A01|C1|p|2.5")) is None
    assert check_header(msg("MSH|^~\\&|A|F|B|G|2026||ADT^A01|C1|p|2.5"),
                        processing_ids=["P"]) is None


@pytest.mark.parametrize("msh", [
    "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5",
    "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5|||AL|ER",
    "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5|||XX|NE",  # not table 0155: AL, AL
    "MSH|^~\\&|A|B|C|D|20260101||ADT^A01||P|",  # header checks fail: a sender still asks
    "MSH|^~\\&|A|B|C|D|20260101||ACK^A01|1|P|2.5|||AL|AL",
    "MSH|^~\\&|A|B|C|D|20260101||ack|1|P|2.5",
])
def test_asked_for_is_what_assess_reads_for_a_sender(msh: str) -> None:
    """What a destination expects back (``asked_for``) is ``assess``'s request, None for an ACK
    message, without the receiver's header checks."""
    message = Message.parse(msh + "\rPID|1||X\r")
    found = assess(message)
    assert asked_for(message) == (None if found.acknowledgement else found.request)
