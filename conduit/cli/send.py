"""``conduit send``: send HL7 files over MLLP and print each ACK (a test client for analysts)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conduit.cli import main

if TYPE_CHECKING:
    from conduit.hl7.acceptance import AckRequest

GRACE = 1.0
"""Seconds to wait for an ACK that MSH-15/16 make depend on the outcome (ER, SU)."""


@main.command()
@click.argument("address", metavar="HOST:PORT")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--connections", "-c", default=1, show_default=True,
              help="Concurrent MLLP connections sharing the messages.")
@click.option("--repeat", "-n", default=1, show_default=True, help="Send everything N times.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for each ACK.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
def send(address: str, files: tuple[Path, ...], connections: int, repeat: int, timeout: float,
         quiet: bool) -> None:
    """Send the messages in FILES (one or many per file, any line ending; folders are walked)
    to HOST:PORT over MLLP, printing each ACK; exit 1 unless every ACK is AA or CA.

    A message with MSH-15/16 (enhanced mode) gets the ACKs they ask for, printed each: a commit
    ACK (CA) then an application ACK (AA), one of them, or none (NE; an ACK message is never
    acknowledged)."""
    from conduit.core.errors import HL7ParseError
    from conduit.hl7.batch import split_messages

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter("expected HOST:PORT", param_hint="ADDRESS")
    messages: list[tuple[str, bytes]] = []
    unreadable = 0
    for path in _walk(files):
        text = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")
        try:
            found = split_messages(text)
        except HL7ParseError as exc:
            click.echo(f"{path}: not sent, not HL7 v2: {exc}", err=True)
            unreadable += 1
            continue
        for index, message in enumerate(found, 1):
            payload = message.encode("utf-8", errors="surrogateescape")
            messages.append((f"{path}#{index}", payload))
    messages *= repeat
    if not messages:
        click.echo("no messages found", err=True)
        sys.exit(1)
    started = time.perf_counter()
    try:
        results = asyncio.run(_send_all(host, int(port), messages, connections, timeout, quiet))
    except OSError as exc:  # refused, unreachable, unknown host: one line, not a traceback
        from conduit.cli.stores import Failure

        reason = (f"no ACK within {timeout:g}s" if isinstance(exc, TimeoutError)
                  else os.strerror(exc.errno).lower() if exc.errno
                  else str(exc) or type(exc).__name__)
        raise Failure(f"cannot send to {host}:{port}: {reason}") from None
    elapsed = time.perf_counter() - started
    accepted = sum(1 for code in results if code in ("AA", "CA"))
    silent = sum(1 for code in results if code == "")
    click.echo(f"sent {len(results)} messages in {elapsed:.2f}s "
               f"({len(results) / elapsed:.0f}/s): {accepted} accepted, "
               f"{len(results) - accepted - silent} not"
               + (f", {silent} not acknowledged (as MSH-15/16 ask, or ACK messages)"
                  if silent else ""))
    sys.exit(0 if accepted + silent == len(results) and not unreadable else 1)


def _expected(payload: bytes) -> tuple[AckRequest | None, bool]:
    """What a message asks its receiver for (None: not enhanced mode), and whether it is an
    ACK message (never acknowledged). HL7 v2 chapter 2, as conduit.hl7.replies answers it."""
    from conduit.core.errors import HL7ParseError
    from conduit.hl7.acceptance import assess
    from conduit.hl7.message import Message

    try:
        found = assess(Message.parse(payload))
    except HL7ParseError:
        return None, False  # the receiver answers AR
    request = found.request if found.request.enhanced else None
    return request, found.acknowledgement




def _walk(paths: tuple[Path, ...]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file()
                                and p.suffix.lower() in (".hl7", ".txt", ".er7")))
        else:
            found.append(path)
    return found


async def _send_all(host: str, port: int, messages: list[tuple[str, bytes]], connections: int,
                    timeout: float, quiet: bool) -> list[str]:
    from conduit.hl7.acceptance import next_ack
    from conduit.hl7.ack import parse_ack
    from conduit.hl7.mllp import frame, read_frame

    queue: asyncio.Queue[tuple[int, str, bytes]] = asyncio.Queue()
    for index, (name, payload) in enumerate(messages):
        queue.put_nowait((index, name, payload))
    codes = [""] * len(messages)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port, limit=2**27)
        try:
            while not queue.empty():
                index, name, payload = queue.get_nowait()
                request, is_ack = _expected(payload)
                writer.write(frame(payload))
                await writer.drain()
                if is_ack:
                    if not quiet:
                        click.echo(f"{name}: sent (an ACK message is not acknowledged)")
                    continue
                got: list[str] = []
                while True:
                    may, certain = next_ack(request, got)
                    if not may:
                        break
                    try:  # an ACK that depends on the outcome (ER, SU) gets a short grace
                        answer = await asyncio.wait_for(read_frame(reader, 2**27),
                                                        timeout if certain else GRACE)
                    except TimeoutError:
                        if certain:
                            raise
                        break
                    if answer is None:
                        codes[index] = "closed"
                        click.echo(f"{name}: connection closed without an ACK")
                        return
                    try:
                        code, control_id, text = parse_ack(answer)
                    except Exception as exc:
                        code, control_id, text = "??", "", f"unreadable ACK: {exc}"
                    got.append(code)
                    if not quiet:
                        click.echo(f"{name}: {code} {control_id}" + (f" {text}" if text else ""))
                codes[index] = got[-1] if got else ""
                if not got and not quiet:
                    click.echo(f"{name}: no ACK (as MSH-15/16 ask)")
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(max(1, min(connections, len(messages))))))
    return codes
