"""Structured logs (structlog): console for people, JSON for machines.

PHI hygiene: code logs message ids, channel and destination names and error kinds at INFO and
above; message content only ever at DEBUG. So that a log call cannot get this wrong, every event
above DEBUG passes :func:`hide_values` before it is written: a :class:`~conduit.core.reason.Reason`
is written in its public form (field paths, no values), any other ``error``/``reason``/``detail``
text only up to its first ``": "`` (the exception's type or the sentence's head: what follows may
quote a message or name a file), and file names (``file``, a ``remote`` that is a file) not
at all.

Correlation: every line carries the context variables bound where it was written (structlog
contextvars): ``request_id`` (the caller's ``X-Request-Id``, or a new one) for dashboard/API
requests and HTTP intake, beside the ``message_id`` the engine logs with each message.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from conduit.core.reason import HIDDEN, Reason

#: Fields whose free text may quote a message (an exception's text, a receiver's answer).
TEXT_FIELDS = frozenset({"error", "reason", "detail", "exception"})
#: Fields that name an inbound file or path: a file may be named after its patient.
NAME_FIELDS = frozenset({"file", "filename", "file_path"})


def hide_values(_logger: Any, method: str, event: MutableMapping[str, Any]
                ) -> MutableMapping[str, Any]:
    """A structlog processor: an event above DEBUG keeps what names a problem, not the values
    (see the module docstring); DEBUG events pass as they are."""
    if method == "debug":
        return event
    for key, found in event.items():
        if isinstance(found, Reason):
            event[key] = found.public
        elif key in NAME_FIELDS and found is not None:
            event[key] = HIDDEN
        elif key == "remote" and isinstance(found, str) and found.startswith("file:"):
            event[key] = "file:" + HIDDEN  # a file source's sender is the file's name
        elif key in TEXT_FIELDS and isinstance(found, str) and ": " in found:
            event[key] = found.split(": ", 1)[0]
    return event


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            hide_values,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([structlog.processors.format_exc_info] if fmt == "json" else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
