"""MLLP framing: frames split or joined across reads, oversize, junk, resynchronisation."""

from __future__ import annotations

import pytest

from conduit.core.errors import HL7ParseError
from conduit.hl7.mllp import END, START, FrameTooLarge, FramingError, MllpDecoder, frame
from tests.samples import ADT_A01, ORU_R01

A = ADT_A01.encode()
B = ORU_R01.encode()


def test_frame() -> None:
    assert frame(b"x") == b"\x0bx\x1c\x0d" == START + b"x" + END
    assert issubclass(FrameTooLarge, FramingError) and issubclass(FramingError, HL7ParseError)


def test_one_frame() -> None:
    assert MllpDecoder().feed(frame(A)) == [A]


def test_several_frames_in_one_read() -> None:
    assert MllpDecoder().feed(frame(A) + frame(B) + frame(A)) == [A, B, A]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_frames_split_across_reads(step: int) -> None:
    data = frame(A) + b"\r\n" + frame(B)
    decoder = MllpDecoder()
    out: list[bytes | FramingError] = []
    for i in range(0, len(data), step):
        out += decoder.feed(data[i : i + step])
    assert out == [A, B]
    assert decoder.pending == 0 and not decoder.in_frame


def test_end_block_split_between_reads() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(START + A + b"\x1c") == []
    assert decoder.in_frame
    assert decoder.feed(b"\x0d") == [A]


def test_lone_fs_inside_payload_is_data() -> None:
    assert MllpDecoder().feed(frame(b"a\x1cb")) == [b"a\x1cb"]


def test_whitespace_between_frames_is_ignored() -> None:
    assert MllpDecoder().feed(b"\r\n" + frame(A) + b"\n\r\n " + frame(B) + b"\r\n") == [A, B]


def test_junk_between_frames_is_reported_in_order_and_decoding_continues() -> None:
    out = MllpDecoder().feed(frame(A) + b"GET / HTTP/1.1\r\n" + frame(B))
    assert out[0] == A and out[2] == B
    assert isinstance(out[1], FramingError)
    assert "14 bytes outside an MLLP frame" in str(out[1])
    assert "GET" not in str(out[1])  # sizes, never content


def test_junk_without_any_frame() -> None:
    decoder = MllpDecoder()
    out = decoder.feed(b"MSH|^~\\&|no framing\r")
    assert len(out) == 1 and isinstance(out[0], FramingError)
    assert decoder.pending == 0
    assert decoder.feed(frame(A)) == [A]


def test_unterminated_frame_followed_by_a_new_one() -> None:
    out = MllpDecoder().feed(START + b"half a message" + frame(B))
    assert isinstance(out[0], FramingError) and "not ended" in str(out[0])
    assert out[1] == B


def test_oversize_frame_in_one_read() -> None:
    decoder = MllpDecoder(max_size=100)
    out = decoder.feed(frame(b"x" * 101) + frame(b"ok"))
    assert isinstance(out[0], FrameTooLarge) and "100" in str(out[0])
    assert out[1:] == [b"ok"]
    assert decoder.feed(frame(b"y" * 100)) == [b"y" * 100]


def test_oversize_frame_streamed_is_discarded_with_bounded_memory() -> None:
    decoder = MllpDecoder(max_size=1000)
    out = decoder.feed(START + b"x" * 600)
    assert out == []
    out = decoder.feed(b"x" * 600)
    assert len(out) == 1 and isinstance(out[0], FrameTooLarge)
    for _ in range(50):
        assert decoder.feed(b"x" * 10_000) == []
        assert decoder.pending <= 1
    assert decoder.feed(b"x\x1c") == []
    assert decoder.feed(b"\x0d" + frame(b"next")) == [b"next"]


def test_oversize_frame_never_ended_then_new_frame() -> None:
    decoder = MllpDecoder(max_size=10)
    out = decoder.feed(START + b"x" * 20)
    assert isinstance(out[0], FrameTooLarge)
    assert decoder.feed(frame(b"ok")) == [b"ok"]


def test_empty_frame() -> None:
    assert MllpDecoder().feed(frame(b"")) == [b""]
