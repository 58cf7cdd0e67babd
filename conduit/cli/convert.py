"""``conduit convert``: look at a conversion without a channel (HL7 v2 <-> FHIR R4).

``conduit convert hl7v2-to-fhir adt.hl7`` prints one Bundle per message of the file (a file may
hold several messages, or FHS/BHS batches); ``conduit convert fhir-to-hl7v2 bundle.json`` prints
the HL7 v2 message(s) for a FHIR resource or Bundle. ``-`` reads standard input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from conduit.cli import main


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


@main.group()
def convert() -> None:
    """Convert messages between HL7 v2 and FHIR R4, printing the result."""


@convert.command("hl7v2-to-fhir")
@click.argument("files", nargs=-1, required=True)
@click.option("--bundle", "bundle_type", type=click.Choice(["transaction", "batch"]),
              default="transaction", show_default=True, help="Bundle type.")
@click.option("--timezone", default=None,
              help="Zone of the sender's clock for times without an offset (IANA name or "
                   "+HH:MM). Default: $CONDUIT_TIMEZONE, else the host's zone.")
@click.option("--validate", is_flag=True, help="Also validate each Bundle (FHIR R4B).")
@click.option("--compact", is_flag=True, help="One Bundle per line (NDJSON) instead of indented.")
def hl7v2_to_fhir(files: tuple[str, ...], bundle_type: str, timezone: str | None,
                  validate: bool, compact: bool) -> None:
    """Print the FHIR Bundle of each HL7 v2 message in FILES."""
    from conduit.fhir import ConvertOptions, convert, dumps
    from conduit.fhir.context import zone
    from conduit.hl7.batch import split_messages
    from conduit.hl7.codec import decode
    from conduit.hl7.message import Message

    try:
        zone(timezone)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--timezone") from None
    from conduit.core.timezone import default_zone

    options = ConvertOptions(bundle_type=bundle_type, timezone=timezone,  # type: ignore[arg-type]
                             default_timezone=default_zone())
    failures = 0
    out = sys.stdout.buffer
    for path in files:
        try:
            text, _ = decode(_read(path))
            texts = split_messages(text)
        except Exception as exc:
            click.echo(f"{path}: {exc}", err=True)
            failures += 1
            continue
        for number, message_text in enumerate(texts, start=1):
            where = f"{path} message {number}"
            try:
                bundle = convert(Message.parse(message_text), options)
            except Exception as exc:
                click.echo(f"{where}: {exc}", err=True)
                failures += 1
                continue
            if validate:
                from conduit.fhir.validate import bundle_problems

                problems = bundle_problems(bundle)
                for problem in problems:
                    click.echo(f"{where}: invalid: {problem}", err=True)
                failures += bool(problems)
            out.write(dumps(bundle, indent=not compact) + b"\n")
    out.flush()
    if failures:
        sys.exit(1)


@convert.command("fhir-to-hl7v2")
@click.argument("files", nargs=-1, required=True)
@click.option("--version", "version", type=click.Choice(["2.3.1", "2.4", "2.5", "2.5.1", "2.6"]),
              default="2.5.1", show_default=True, help="HL7 v2 version to write.")
@click.option("--event", type=click.Choice(["A04", "A08"]), default="A08", show_default=True,
              help="ADT trigger for Patient/Encounter content.")
@click.option("--message-type", type=click.Choice(["auto", "ADT", "ORU"]), default="auto",
              show_default=True, help="The message to write (see the fhir-to-hl7v2 step).")
@click.option("--patients", type=click.Choice(["refuse", "split"]), default="refuse",
              show_default=True, help="A Bundle of several patients: refuse it, or write one "
                                      "message per patient (in an HL7 batch).")
@click.option("--cr", is_flag=True, help="End segments with CR (as sent) instead of newlines.")
def fhir_to_hl7v2(files: tuple[str, ...], version: str, event: str, message_type: str,
                  patients: str, cr: bool) -> None:
    """Print the HL7 v2 message for each FHIR resource or Bundle in FILES.

    A file holds one JSON resource, a JSON array of them, or one per line (NDJSON).
    """

    from conduit.fhir.tov2 import V2Options, to_hl7v2

    options = V2Options(version=version, adt_event=event,  # type: ignore[arg-type]
                        message_type=message_type, patients=patients)  # type: ignore[arg-type]
    failures = 0
    for path in files:
        try:
            items = _json_items(_read(path))
        except (OSError, ValueError) as exc:
            click.echo(f"{path}: {exc}", err=True)
            failures += 1
            continue
        for number, item in enumerate(items, start=1):
            try:
                text = to_hl7v2(item, options)
            except Exception as exc:
                click.echo(f"{path} resource {number}: {exc}", err=True)
                failures += 1
                continue
            click.echo(text if cr else text.replace("\r", "\n"), nl=not cr)
    if failures:
        sys.exit(1)


def _json_items(raw: bytes) -> list[dict[str, object]]:
    from conduit.fhir.tov2.decimals import JSONDecodeError, read_json  # decimals as written

    try:
        data = read_json(raw)
    except JSONDecodeError:
        try:  # NDJSON
            data = [read_json(line) for line in raw.splitlines() if line.strip()]
        except JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc.msg} at line {exc.lineno}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 at byte {exc.start}") from None
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(i, dict) for i in items):
        raise ValueError("expected JSON objects (FHIR resources)")
    return items
