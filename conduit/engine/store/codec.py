"""Stored content is compressed: HL7 text shrinks to about 60% even for a 700-byte message.

Raw deflate with a window sized to the content: zlib's default 32 KB window and memory level cost
~60 µs to set up for every small message here, a 2 KB window ~10 µs, for nearly the same size.
The first byte says how the rest is stored, so the format can grow (a delta against the raw
message is the next step for transformed and sent content).
"""

from __future__ import annotations

import zlib

PLAIN, DEFLATE = b"\x00", b"\x01"


def pack(content: bytes | None) -> bytes | None:
    if content is None:
        return None
    if len(content) < 256:  # an ACK or a short reply: deflate would save a few bytes at most
        return PLAIN + content
    wbits, memory = (-11, 4) if len(content) <= 8192 else (-15, 8)
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits, memory)
    return DEFLATE + compressor.compress(content) + compressor.flush()


def unpack(stored: bytes | None) -> bytes | None:
    if stored is None:
        return None
    stored = bytes(stored)
    kind, body = stored[:1], stored[1:]
    if kind == DEFLATE:
        return zlib.decompress(body, -15)
    if kind == PLAIN:
        return body
    raise ValueError(f"unknown stored content format {kind!r}")
