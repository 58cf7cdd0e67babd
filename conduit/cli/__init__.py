"""The ``conduit`` command: one module per sub-command, registered on :data:`main`."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="conduit-engine")
def main() -> None:
    """Conduit: an integration engine for healthcare (HL7 v2, MLLP, FHIR, SOAP, REST)."""


def _register() -> None:
    """Import the command modules; each adds its commands to ``main``."""
    import importlib

    for name in ("run", "send", "messages", "validate", "schema", "test", "convert", "bench",
                 "users", "prune", "reprocess", "hash_password", "status", "channels", "dlq",
                 "breakers", "db", "events", "bus"):
        try:
            importlib.import_module(f"conduit.cli.{name}")
        except ModuleNotFoundError as exc:  # a command still being written must not break the rest
            if exc.name != f"conduit.cli.{name}":
                raise


_register()
