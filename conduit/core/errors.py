"""The one error tree of Conduit.

Every failure a connector or step can meet is mapped, at the connector boundary, to one of these::

    ConduitError
    ├── ConfigError               a channel or settings file is wrong (file, line, key)
    ├── MessageError              the message itself is bad: never retried
    │   ├── HL7ParseError         not HL7 v2 (no MSH, broken delimiters); answered AR
    │   └── ValidationError       HL7 that breaks the channel's rules; answered AE
    ├── DeliveryError             sending to a destination failed
    │   ├── RetryableError        worth another attempt: connection refused, timeout, HL7 AE/CE,
    │   │                         HTTP 5xx/429
    │   │   └── ApplicationError  HL7 AE/CE from the receiver (Camel: HL7AcknowledgementException)
    │   └── PermanentError        never worth another attempt: HL7 AR/CR, HTTP 4xx
    │       └── ApplicationReject HL7 AR/CR from the receiver
    ├── UnavailableError          the store or the bus cannot take the message now; the sender
    │                             must keep it (AE / HTTP 503)
    └── StartupError              the engine cannot start: a port in use; one line for the operator

Filtering is an outcome, not an error (Mirth counts FILTERED as done).
Errors carry message ids, never message bodies (PHI).
"""

from __future__ import annotations


class ConduitError(Exception):
    """Base of every error Conduit raises on purpose."""


class ConfigError(ConduitError):
    """A channel or settings file is wrong; ``problems`` lists each as 'file:line: key: what'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class MessageError(ConduitError):
    """The message itself is bad; retrying cannot help."""


class HL7ParseError(MessageError):
    """The bytes are not an HL7 v2 message we can read (answered AR).

    ``error_code`` is the HL7 table 0357 code the AR carries in ERR-3 (100 segment sequence,
    102 data type, ...) and ``location`` the ERR-2 error location when one is known: segment
    id, sequence, then field/component positions, e.g. ``("MSH", 1, 2)``.
    """

    def __init__(self, reason: str, *, error_code: str = "207",
                 location: tuple[str | int, ...] | None = None) -> None:
        super().__init__(reason)
        self.error_code = error_code
        self.location = location


class ValidationError(MessageError):
    """The message is HL7 but breaks the rules the channel asks for (answered AE)."""


class DeliveryError(ConduitError):
    """Sending to a destination failed; ``response`` keeps what the receiver answered, if any."""

    def __init__(self, reason: str, response: bytes | None = None) -> None:
        super().__init__(reason)
        self.response = response


class RetryableError(DeliveryError):
    """A failure worth another attempt (connection, timeout, AE/CE, HTTP 5xx/429)."""


class ApplicationError(RetryableError):
    """The receiver answered HL7 AE or CE."""


class PermanentError(DeliveryError):
    """A failure no retry can fix (AR/CR, HTTP 4xx, a template that cannot render)."""


class ApplicationReject(PermanentError):
    """The receiver answered HL7 AR or CR."""


class UnavailableError(ConduitError):
    """The store or the bus cannot take the message now; the sender must keep it."""


class StartupError(ConduitError):
    """The engine cannot start (a listener's port is taken): the message says what to change."""


def port_problem(exc: OSError) -> bool:
    """Whether ``exc`` is a listening socket refused: address in use, not ours, or privileged."""
    import errno

    return exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)
