"""Stored content is compressed: HL7 text shrinks to about 60% even for a 700-byte message.

Raw deflate with a window sized to the content: zlib's default 32 KB window and memory level cost
~60 µs to set up for every small message here, a 2 KB window ~10 µs, for nearly the same size.
The first byte says how the rest is stored.

Transformed and per-destination content are near-copies of the raw message (a ``set`` step
changes a field or two), so they are stored as a *delta*: deflate primed with the raw message as
its dictionary (``zdict``). A copy of a 700-byte message then takes about a dozen bytes instead of
about 320, and compressing it is cheaper too. Reading a delta needs the message's raw content
(:func:`is_delta` says when), which the store keeps for as long as the message exists.
"""

from __future__ import annotations

import zlib

PLAIN, DEFLATE, DELTA = b"\x00", b"\x01", b"\x02"


def pack(content: bytes | None, base: bytes | None = None) -> bytes | None:
    """``content`` as stored; with ``base`` (the message's raw content), as a delta against it."""
    if content is None:
        return None
    if base:
        # a 32 KB window: a delta reaches back over the last 32 KB of the base
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zdict=base)
        return DELTA + compressor.compress(content) + compressor.flush()
    if len(content) < 256:  # an ACK or a short reply: deflate would save a few bytes at most
        return PLAIN + content
    wbits, memory = (-11, 4) if len(content) <= 8192 else (-15, 8)
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits, memory)
    return DEFLATE + compressor.compress(content) + compressor.flush()


def is_delta(stored: bytes | None) -> bool:
    """True when reading ``stored`` needs the raw content it was packed against."""
    return stored is not None and bytes(stored[:1]) == DELTA


def unpack(stored: bytes | None, base: bytes | None = None) -> bytes | None:
    """The content back; ``base`` is the raw content a delta was packed against."""
    if stored is None:
        return None
    stored = bytes(stored)
    kind, body = stored[:1], stored[1:]
    if kind == DEFLATE:
        return zlib.decompress(body, -15)
    if kind == PLAIN:
        return body
    if kind == DELTA:
        if not base:
            raise ValueError("stored content is a delta: its raw message is needed to read it")
        decompressor = zlib.decompressobj(-15, zdict=base)
        return decompressor.decompress(body) + decompressor.flush()
    raise ValueError(f"unknown stored content format {kind!r}")
