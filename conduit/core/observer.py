"""The observer seam: what the engine tells whoever watches it (metrics, alerts, the sampler).

The runtime, delivery and controller call one :class:`Observer` at the moments that matter; the
watchers implement the methods they care about. Nothing on the hot path knows who listens, and
nothing is measured by subclassing the engine or proxying its store. Calls are synchronous and
must be cheap (an increment, a dict write): they run on the event loop for every message.

Statuses are the store's: ``received`` is told ``RECEIVED`` (stored, waiting for the pipeline)
or ``ERROR`` (kept but refused: unreadable or invalid); ``processed`` is told the pipeline's
outcome, ``QUEUED`` when some destination has the message to send, else the final ``FILTERED``,
``ERROR`` or ``TRANSFORMED``; ``delivered`` is told one destination's ``SENT`` or ``ERROR`` and
the message's status after it (``SENT``/``ERROR`` once it is final, else ``QUEUED``).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Observer", "Observers", "Stage"]

Stage = Literal["processing", "delivery"]


class Observer:
    """The interface, with methods that do nothing: override what you watch."""

    __slots__ = ()

    def received(self, channel: str, message_id: int, status: str) -> None:
        """A message was stored at intake (``RECEIVED`` or, refused, ``ERROR``)."""

    def processed(self, channel: str, message_id: int, status: str) -> None:
        """The pipeline's outcome was stored (``QUEUED``, ``FILTERED``, ``ERROR``,
        ``TRANSFORMED``)."""

    def answered(self, channel: str, code: str) -> None:
        """The sender was answered: ``AA`` (accepted), ``AE`` (try again) or ``AR`` (refused)."""

    def attempt_failed(self, channel: str, destination: str, message_id: int) -> None:
        """A send failed and will be retried."""

    def delivered(self, channel: str, destination: str, message_id: int, status: str,
                  final: str) -> None:
        """A destination finished with a message (``SENT`` or ``ERROR``); ``final`` is the
        message's status after it."""

    def timed(self, channel: str, stage: Stage, seconds: float,
              destination: str | None = None) -> None:
        """How long a message's pipeline run, or one delivery (retries included), took."""


class Observers(Observer):
    """Several observers as one; the engine holds one of these and watchers join it."""

    __slots__ = ("_each",)

    def __init__(self, *observers: Observer) -> None:
        self._each: tuple[Observer, ...] = observers

    def add(self, observer: Observer) -> None:
        self._each = (*self._each, observer)

    def received(self, channel: str, message_id: int, status: str) -> None:
        for observer in self._each:
            observer.received(channel, message_id, status)

    def processed(self, channel: str, message_id: int, status: str) -> None:
        for observer in self._each:
            observer.processed(channel, message_id, status)

    def answered(self, channel: str, code: str) -> None:
        for observer in self._each:
            observer.answered(channel, code)

    def attempt_failed(self, channel: str, destination: str, message_id: int) -> None:
        for observer in self._each:
            observer.attempt_failed(channel, destination, message_id)

    def delivered(self, channel: str, destination: str, message_id: int, status: str,
                  final: str) -> None:
        for observer in self._each:
            observer.delivered(channel, destination, message_id, status, final)

    def timed(self, channel: str, stage: Stage, seconds: float,
              destination: str | None = None) -> None:
        for observer in self._each:
            observer.timed(channel, stage, seconds, destination)
