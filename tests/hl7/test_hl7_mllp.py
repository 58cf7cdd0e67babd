"""MLLP framing: frames split or joined across reads, oversize, junk, a stream ending inside a
frame; the same framer the listener, the sender and ``conduit send`` use."""

from __future__ import annotations

import asyncio

import pytest

from conduit.core.errors import HL7ParseError
from conduit.hl7.mllp import END, START, FrameTooLarge, FramingError, frame, read_frame
from tests.samples import ADT_A01, ORU_R01

A = ADT_A01.encode()
B = ORU_R01.encode()
LIMIT = 1 << 20


def frames(data: bytes, *, step: int | None = None, limit: int = LIMIT) -> list[object]:
    """Every frame (or framing error) read from a stream that carries ``data``, fed ``step``
    bytes at a time, until the stream ends."""

    async def scenario() -> list[object]:
        reader = asyncio.StreamReader(limit=limit + 16)
        out: list[object] = []

        async def feed() -> None:
            size = step or len(data) or 1
            for i in range(0, len(data), size):
                reader.feed_data(data[i:i + size])
                await asyncio.sleep(0)
            reader.feed_eof()

        feeding = asyncio.create_task(feed())
        while True:
            try:
                payload = await read_frame(reader, limit)
            except FramingError as exc:
                out.append(exc)
                if reader.at_eof():
                    break
                continue
            if payload is None:
                break
            out.append(payload)
        await feeding
        return out

    return asyncio.run(scenario())


def test_frame() -> None:
    assert frame(b"x") == b"\x0bx\x1c\x0d" == START + b"x" + END
    assert issubclass(FrameTooLarge, FramingError) and issubclass(FramingError, HL7ParseError)


def test_one_frame() -> None:
    assert frames(frame(A)) == [A]


def test_several_frames_in_one_read() -> None:
    assert frames(frame(A) + frame(B) + frame(A)) == [A, B, A]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_frames_split_across_reads(step: int) -> None:
    assert frames(frame(A) + b"\r\n" + frame(B), step=step) == [A, B]


def test_end_block_split_between_reads() -> None:
    assert frames(START + A + END, step=len(A) + 2) == [A]


def test_lone_fs_inside_payload_is_data() -> None:
    assert frames(frame(b"a\x1cb")) == [b"a\x1cb"]


def test_whitespace_between_frames_is_ignored() -> None:
    assert frames(b"\r\n" + frame(A) + b"\n\r\n " + frame(B) + b"\r\n") == [A, B]


def test_junk_before_a_frame_is_reported_by_size_and_reading_continues() -> None:
    out = frames(frame(A) + b"GET / HTTP/1.1\r\n" + frame(B) + frame(A))
    assert out[0] == A
    assert isinstance(out[1], FramingError)
    assert "14 bytes outside an MLLP frame" in str(out[1])
    assert "GET" not in str(out[1])  # sizes, never content
    assert out[2:] == [A]


def test_stream_ending_inside_a_frame() -> None:
    out = frames(frame(A) + START + b"half a message")
    assert out[0] == A
    assert isinstance(out[1], FramingError) and "inside a frame" in str(out[1])


def test_oversize_frame_is_discarded_and_reading_goes_on() -> None:
    out = frames(frame(b"x" * 5000) + frame(b"ok"), limit=1000)
    assert isinstance(out[0], FrameTooLarge) and "1000" in str(out[0])
    assert out[1:] == [b"ok"]


@pytest.mark.parametrize("step", [100, 4096])
def test_oversize_frame_streamed_is_discarded(step: int) -> None:
    out = frames(frame(b"x" * 50_000) + frame(b"next"), step=step, limit=1000)
    assert isinstance(out[0], FrameTooLarge)
    assert out[1:] == [b"next"]


def test_empty_frame() -> None:
    assert frames(frame(b"")) == [b""]


def test_clean_end_of_stream() -> None:
    assert frames(b"") == []
    assert frames(b"\r\n") == []
