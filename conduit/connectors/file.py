"""Files: a writer destination with a templated path and atomic writes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field

from conduit.connectors.base import ConnectorContext, DestinationConfig, Outbound, destination
from conduit.engine.errors import HL7ParseError, PermanentError
from conduit.hl7.message import Message
from conduit.transforms.template import compile_template, render_template


class FileDestinationConfig(DestinationConfig):
    """Write each message to its own file, atomically (temp file, fsync, rename)."""

    type: Literal["file"]
    path: str = Field(
        description="Target path, a Jinja2 template; `msg[...]` reads fields of the message "
                    "being written. Relative paths are relative to the working directory.",
        examples=["out/{{ msg['MSH-10'] }}.hl7", "archive/{{ msg['MSH-9.1'] }}/{{ id }}.hl7"])
    overwrite: bool = Field(True, description="Replace a file that already exists.")
    fsync: bool = Field(True, description="fsync the file and its folder before reporting SENT.")


@destination("file", FileDestinationConfig)
class FileDestination:
    """Writes ``out.content`` byte for byte (so the message keeps its own encoding)."""

    def __init__(self, config: FileDestinationConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self._path = compile_template(config.path)

    def target(self, out: Outbound) -> Path:
        """Render the path for this message; refuse paths that climb out of their base."""
        try:
            message: Message | None = Message.parse(out.content)
        except HL7ParseError:
            message = None
        try:
            rendered = render_template(self._path, message, id=out.message_id,
                                       channel=out.channel, destination=out.destination)
        except Exception as exc:
            raise PermanentError(f"file path template failed: {type(exc).__name__}: {exc}") from exc
        rendered = rendered.strip()
        if not rendered or "\x00" in rendered or ".." in Path(rendered).parts:
            raise PermanentError(f"file path {rendered!r} is not allowed")
        return Path(rendered)

    async def send(self, out: Outbound) -> bytes:
        path = self.target(out)
        await asyncio.to_thread(self._write, path, out.content)
        return b""

    def _write(self, path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.config.overwrite and path.exists():
            raise PermanentError(f"{path} exists and overwrite is false")
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                if self.config.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        if self.config.fsync:
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)

    async def close(self) -> None:
        return None
