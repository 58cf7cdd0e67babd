"""``conduit bench``: measure the engine next to its baseline, in one run."""

from __future__ import annotations

import click

from conduit.bench.runner import Options
from conduit.cli import main


@main.command()
@click.option("--messages", "-n", default=20000, show_default=True, help="Messages measured.")
@click.option("--connections", "-c", default=16, show_default=True,
              help="Concurrent MLLP connections.")
@click.option("--dest-connections", type=click.IntRange(1, 64), default=Options.dest_connections,
              show_default=True,
              help="Connections the standard channel's MLLP destination keeps to the receiver.")
@click.option("--bus", type=click.Choice(["embedded", "amqp"]), default="embedded",
              show_default=True)
@click.option("--store", type=click.Choice(["sqlite", "postgresql"]), default="sqlite",
              show_default=True)
@click.option("--fhir", is_flag=True, help="Add the HL7 v2 to FHIR step.")
@click.option("--rate", type=float, help="Offered load in messages/s (default: as fast as ACKs "
                                         "come back).")
@click.option("--warmup", default=1000, show_default=True)
@click.option("--short", is_flag=True, help="A few seconds: for CI, proves it runs.")
@click.option("--out-dir", type=click.Path(file_okay=False), default=None,
              help="Where the file destination writes (default: /dev/shm when there is one; see "
                   "the README's Performance section for why).")
@click.option("--profile", type=click.Path(dir_okay=False), default=None,
              help="Run the engine under cProfile and write its stats here (read them with "
                   "python -m pstats); figures are slower while profiling.")
@click.option("--amqp-url", default=Options.amqp_url, show_default=True,
              help="RabbitMQ for --bus amqp; Conduit's URL options apply "
                   "(e.g. ?queue_type=classic; quorum is the default).")
@click.option("--postgres-url", default=Options.postgres_url, show_default=True,
              help="A PostgreSQL database the benchmark may create databases from.")
@click.option("--ceiling-cores", type=click.IntRange(min=1), default=Options.ceiling_cores,
              show_default=True,
              help="Cores of RabbitMQ and of PostgreSQL each for the cluster ceiling line.")
@click.option("--soak", "soak_for", metavar="DURATION", default=None,
              help="Offer --rate for this long (e.g. 30m, 2h) and print ACK p50/p99, delivered "
                   "msg/s, RSS and queue depth every minute, then whether any trends upward.")
@click.option("--soak-window", type=float, default=60.0, hidden=True,
              help="Seconds per soak reading (tests use a few).")
def bench(messages: int, connections: int, dest_connections: int, bus: str, store: str, fhir: bool,
          rate: float | None, warmup: int, short: bool, out_dir: str | None,
          profile: str | None, amqp_url: str, postgres_url: str, ceiling_cores: int,
          soak_for: str | None, soak_window: float) -> None:
    """Drive `conduit run` on a standard channel (MLLP in, filter, set + template, MLLP and file
    out) and print msgs/s, ACK latency, CPU, RSS and store size next to a raw MLLP echo baseline
    (and RabbitMQ publish+consume with --bus amqp) measured in the same run. The last line is JSON.
    """
    from conduit.bench.runner import benchmark, unreachable

    if short:
        messages, warmup = min(messages, 500), min(warmup, 100)
    options = Options(messages=messages, connections=connections, bus=bus, store=store,
                      fhir=fhir, rate=rate, warmup=warmup, profile=profile, out_dir=out_dir,
                      amqp_url=amqp_url, postgres_url=postgres_url,
                      ceiling_cores=ceiling_cores, dest_connections=dest_connections)
    seconds = None
    if soak_for is not None:
        from conduit.core.duration import parse_duration

        if not rate:
            raise click.UsageError("--soak offers a fixed load: give --rate too")
        try:
            seconds = parse_duration(soak_for)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--soak") from exc
    if problems := unreachable(options):
        raise click.ClickException("\n".join(problems))
    if seconds is not None:
        from conduit.bench.soak import soak

        soak(options, seconds, soak_window)
        return
    benchmark(options)
