"""MLLP framing (``0x0B payload 0x1C 0x0D``), without sockets, so it is testable byte by byte.

``MllpDecoder.feed`` takes whatever the socket produced and returns, in arrival order, complete
payloads (``bytes``) and framing problems (``FramingError`` instances, *returned, not raised*).
Returning the problems in place means a listener can NAK a bad frame and still answer the good
frames around it, in order, on the same connection, without any frame being held back::

    for item in decoder.feed(chunk):
        if isinstance(item, FramingError):
            send(frame(nak_for(item)))      # e.g. build_ack_for_unparseable
        else:
            handle(item)

Whitespace between frames (a stray CR/LF after the end block) is ignored silently; anything else
outside a frame is reported (by size, never content). An oversized frame is reported once, its
bytes are discarded as they arrive (memory stays bounded) and decoding resumes after its end.
"""

from __future__ import annotations

from conduit.core.errors import HL7ParseError

__all__ = ["END", "START", "FrameTooLarge", "FramingError", "MllpDecoder", "frame"]

START = b"\x0b"
END = b"\x1c\x0d"
_FS = 0x1C
_WS = b" \t\r\n\x00"


class FramingError(HL7ParseError):
    """Bytes that do not form an MLLP frame (outside a frame, or a frame never ended)."""


class FrameTooLarge(FramingError):
    """A frame longer than the decoder's ``max_size``; its content was discarded."""


def frame(payload: bytes) -> bytes:
    """Wrap one message for the wire."""
    return START + payload + END


class MllpDecoder:
    """Incremental MLLP decoder; one per connection."""

    def __init__(self, max_size: int = 16 * 1024 * 1024) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._inside = False  # after START, before END
        self._discarding = False  # inside an oversized frame
        self._scan = 0  # where to resume looking for END inside the buffer

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete frame (for idle/close diagnostics)."""
        return len(self._buf)

    @property
    def in_frame(self) -> bool:
        """True while a frame has started and not ended (the connection closed mid-message?)."""
        return self._inside or self._discarding

    def feed(self, data: bytes) -> list[bytes | FramingError]:
        """Consume ``data``; return complete payloads and framing errors in arrival order."""
        out: list[bytes | FramingError] = []
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        while pos < n:
            if self._discarding:
                j = buf.find(END, pos)
                k = buf.find(START, pos, n if j == -1 else j)
                if k != -1:  # a new frame began: the oversized one was never ended
                    self._discarding = False
                    self._inside = True
                    pos = self._scan = k + 1
                    continue
                if j == -1:
                    # keep a trailing 0x1C: it may be the first half of END
                    pos = n - 1 if buf[n - 1] == _FS else n
                    break
                self._discarding = False
                pos = j + 2
            elif not self._inside:
                i = buf.find(START, pos)
                stop = n if i == -1 else i
                junk = bytes(buf[pos:stop]).strip(_WS)
                if junk:
                    out.append(FramingError(f"{len(junk)} bytes outside an MLLP frame ignored"))
                if i == -1:
                    pos = n
                    break
                self._inside = True
                pos = i + 1
                self._scan = pos
            else:
                j = buf.find(END, self._scan)
                k = buf.find(START, self._scan, n if j == -1 else j)
                if k != -1:
                    out.append(FramingError(
                        f"MLLP frame of {k - pos} bytes not ended before the next frame; dropped"))
                    pos = k + 1
                    self._scan = pos
                    continue
                if j == -1:
                    if n - pos > self.max_size:
                        out.append(self._too_large(n - pos))
                        self._inside = False
                        self._discarding = True
                        pos = n - 1 if buf[n - 1] == _FS else n
                    else:
                        self._scan = max(pos, n - 1)
                    break
                size = j - pos
                if size > self.max_size:
                    out.append(self._too_large(size))
                else:
                    out.append(bytes(buf[pos:j]))
                self._inside = False
                pos = j + 2
        if pos:
            del buf[:pos]
            self._scan = max(0, self._scan - pos)
        return out

    def _too_large(self, size: int) -> FrameTooLarge:
        return FrameTooLarge(
            f"MLLP frame exceeds {self.max_size} bytes (at least {size}); discarded")
