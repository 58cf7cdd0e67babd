"""What tells an HL7 v2 file cut short, and that whole files from the corpus are never taken
for cut ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from conduit.hl7.completeness import incomplete_reason
from tests.samples import corpus_files, corpus_id, sample

MESSAGE = (b"MSH|^~\\&|LAB|HOSP|EHR|HOSP|20260101||ORU^R01|C1|P|2.5\r"
           b"PID|1||P1^^^HOSP^MR||TESTPATIENT^A\r"
           b"OBX|1|NM|2093-3^Cholesterol^LN||180|mg/dL|||||F\r")


UNCLOSED = {"python-hl7/sample_bad_batch.hl7", "python-hl7/sample_bad_batch1.hl7",
            "python-hl7/sample_bad_file.hl7", "python-hl7/sample_bad_file1.hl7",
            "python-hl7/sample_batch3.hl7", "python-hl7/sample_file3.hl7"}
"""python-hl7's samples of batches opened twice, trailers missing or counting otherwise."""


@pytest.mark.parametrize("name", sorted(UNCLOSED))
def test_corpus_batches_with_missing_or_wrong_trailers_are_seen(name: str) -> None:
    assert incomplete_reason(sample(name), require_final_terminator=False) is not None


@pytest.mark.parametrize("path", [p for p in corpus_files() if p.read_bytes().strip()
                                  and corpus_id(p) not in UNCLOSED], ids=corpus_id)
def test_whole_corpus_files_are_not_taken_for_cut(path: Path) -> None:
    data = path.read_bytes()
    assert incomplete_reason(data, require_final_terminator=False) is None
    if data.rstrip(b" \t").endswith((b"\r", b"\n")):
        assert incomplete_reason(data) is None


def test_every_cut_inside_a_segment_is_seen() -> None:
    for end in range(4, len(MESSAGE)):
        if MESSAGE[end - 1:end] in (b"\r",):
            continue
        cut = incomplete_reason(MESSAGE[:end])
        assert cut is not None and not cut.ended, end
    assert incomplete_reason(MESSAGE) is None


def test_lenient_mode_checks_the_last_segments_name_and_required_fields() -> None:
    lenient = {"require_final_terminator": False}
    assert incomplete_reason(MESSAGE.rstrip(b"\r"), **lenient) is None
    assert incomplete_reason(MESSAGE[:-14], **lenient) is not None  # OBX without OBX-11
    assert incomplete_reason(MESSAGE + b"OB", **lenient) is not None


def test_batch_trailers() -> None:
    head = b"FHS|^~\\&\rBHS|^~\\&\r"
    assert incomplete_reason(head + MESSAGE + MESSAGE + b"BTS|2\rFTS|1\r") is None
    assert incomplete_reason(head + MESSAGE + MESSAGE + b"BTS|\rFTS|\r") is None  # no counts
    missing = incomplete_reason(head + MESSAGE)
    assert missing is not None and not missing.ended and "BTS" in missing.reason
    short = incomplete_reason(head + MESSAGE + b"BTS|2\rFTS|1\r")
    assert short is not None and short.ended
    assert incomplete_reason(b"FHS|^~\\&\r" + MESSAGE + b"FTS|1\r") is None  # no BHS
    assert incomplete_reason(b"not HL7 at all") is None
