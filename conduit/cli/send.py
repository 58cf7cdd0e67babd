"""``conduit send``: send HL7 files over MLLP and print each ACK (a test client for analysts)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import click

from conduit.cli import main


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
    to HOST:PORT over MLLP, printing each ACK; exit 1 unless every ACK is AA or CA."""
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
    click.echo(f"sent {len(results)} messages in {elapsed:.2f}s "
               f"({len(results) / elapsed:.0f}/s): {accepted} accepted, "
               f"{len(results) - accepted} not")
    sys.exit(0 if accepted == len(results) and not unreadable else 1)


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
                writer.write(frame(payload))
                await writer.drain()
                answer = await asyncio.wait_for(read_frame(reader, 2**27), timeout)
                if answer is None:
                    codes[index] = "closed"
                    click.echo(f"{name}: connection closed without an ACK")
                    return
                try:
                    code, control_id, text = parse_ack(answer)
                except Exception as exc:
                    code, control_id, text = "??", "", f"unreadable ACK: {exc}"
                codes[index] = code
                if not quiet:
                    click.echo(f"{name}: {code} {control_id}" + (f" {text}" if text else ""))
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(max(1, min(connections, len(messages))))))
    return codes
