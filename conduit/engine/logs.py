"""Structured logs (structlog): console for people, JSON for machines.

PHI hygiene: code logs message ids, channel and destination names and error kinds at INFO and
above; message content only ever at DEBUG.

Correlation: every line carries the context variables bound where it was written (structlog
contextvars): ``request_id`` (the caller's ``X-Request-Id``, or a new one) for dashboard/API
requests and HTTP intake, beside the ``message_id`` the engine logs with each message.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([structlog.processors.format_exc_info] if fmt == "json" else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
