"""The bus between the stages: ``conduit.<channel>.source`` and ``conduit.<channel>.dest.<name>``.

Two implementations share one protocol: the embedded in-process bus (default; the store makes it
durable) and RabbitMQ (production; the broker holds the queues).
"""

from conduit.bus.base import (
    Bus,
    DeadLetter,
    Envelope,
    Handler,
    QueueSpec,
    dead_letter_queue,
    dest_queue,
    source_queue,
)
from conduit.bus.embedded import CAPACITY, EmbeddedBus

__all__ = ["Bus", "DeadLetter", "EmbeddedBus", "Envelope", "Handler", "QueueSpec",
           "dead_letter_queue", "dest_queue", "make_bus", "source_queue"]


def make_bus(url: str | None, *, queue_buffer: int = CAPACITY) -> Bus:
    """The bus for a URL: none or ``memory://`` = embedded (holding ``queue_buffer`` envelopes
    a queue in memory), ``amqp://`` = RabbitMQ."""
    if not url or url.startswith("memory:"):
        return EmbeddedBus(capacity=queue_buffer)
    if url.startswith(("amqp://", "amqps://")):
        from conduit.bus.rabbitmq import RabbitBus

        return RabbitBus(url)
    raise ValueError(f"unknown bus URL scheme in {url.split('://')[0]!r}: use amqp:// or memory://")
