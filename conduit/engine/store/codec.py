"""Stored content is zlib-compressed: HL7 text shrinks 3-5x, at ~20 µs a message."""

from __future__ import annotations

import zlib


def pack(content: bytes | None) -> bytes | None:
    return None if content is None else zlib.compress(content, 6)


def unpack(stored: bytes | None) -> bytes | None:
    return None if stored is None else zlib.decompress(stored)
