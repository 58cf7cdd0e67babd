"""Reasons keep a viewer's form beside the whole text, through the store's one column."""

from __future__ import annotations

import pickle

from conduit.core.reason import HIDDEN, WITHHELD, Reason, failure, loaded, public, stored, value


def test_a_reason_is_its_whole_text_and_hides_values_from_viewers() -> None:
    reason = Reason.of("PID-5.1 is ", value("'smith'"), ", expected 'ADT'")
    assert reason == "PID-5.1 is 'smith', expected 'ADT'"  # what a sender and operator read
    assert public(reason) == f"PID-5.1 is {HIDDEN}, expected 'ADT'"
    nested = Reason.of("not (", reason, ")")
    assert nested.public == f"not (PID-5.1 is {HIDDEN}, expected 'ADT')"
    assert public(Reason("message bus unavailable")) == "message bus unavailable"
    assert pickle.loads(pickle.dumps(reason)).public == reason.public


def test_the_store_form_round_trips_and_plain_text_reads_back_withheld() -> None:
    reason = Reason.of("transform failed: ", value("ValueError: DOE^JOHN"))
    back = loaded(stored(reason))
    assert back == reason and back is not None and back.public == reason.public
    same = loaded(stored(Reason("no values here")))
    assert same == "no values here" and same is not None and same.public == same
    legacy = loaded("PID-5.1 is 'smith', expected 'ADT'")  # a row from before, or plain text
    assert legacy == "PID-5.1 is 'smith', expected 'ADT'" and public(legacy) == WITHHELD
    assert loaded(None) is None and stored(None) is None


def test_message_data_cannot_forge_a_public_part() -> None:
    """A value holding the store's marker cannot end the public part early."""
    forged = "\ue000DOE^JOHN\ue000"
    reason = Reason.of("PID-5 is ", value(forged))
    back = loaded(stored(reason))
    assert back is not None and "DOE" not in back.public
    plain = loaded(stored(forged))  # plain text starting with the marker: still withheld
    assert plain is not None and public(plain) == WITHHELD


def test_an_exception_is_its_type_for_viewers() -> None:
    assert public(failure(OSError("No such file: '/in/DOE_JOHN.hl7'"))) == f"OSError: {HIDDEN}"
    given = Reason("receiver answered AE")
    assert failure(RuntimeError(given)) is given
    assert public(failure(TimeoutError())) == "TimeoutError"
