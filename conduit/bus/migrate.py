"""Move classic RabbitMQ queues to quorum without losing a message (``conduit bus migrate-queues``).

A queue's type is fixed once declared, so each classic queue is emptied into a quorum queue
beside it (``<name>.quorum-migration``), deleted, declared again as quorum with its other
settings, and filled back. Every move is ``basic.get``, a publish the broker confirms, then the
ack of the original: a crash in between leaves a copy in both queues (at-least-once, as the bus
always is), never none. The delete is ``if-empty`` and ``if-unused``, so a message published or a
consumer attached meanwhile makes it fail instead of losing anything; a run interrupted anywhere
is finished by running it again (a migration queue left over is emptied back first). Order is
kept: messages leave and come back first in, first out.

The engines must be stopped (workers would consume from the migration queue's original, and a
source publishing while the queue is briefly gone gets AE). It refuses a queue with consumers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pika
import pika.exceptions
from pika.spec import BasicProperties

from conduit.bus.base import QueueSpec
from conduit.bus.rabbitmq import RabbitBus, declare_as_first
from conduit.core.errors import ConfigError

#: The quorum queue a classic queue's messages wait in while it is declared again.
SUFFIX = ".quorum-migration"
#: Headers of RabbitMQ's sender-selected distribution: a delivery still carries ``CC``, and
#: publishing it again with it would copy it into the other queues a second time.
ROUTING_HEADERS = ("CC", "BCC")
DELETE_ATTEMPTS = 5


@dataclass(slots=True)
class Migrated:
    """One queue's outcome: ``moved`` messages now in it as quorum (0 for an empty one);
    ``already`` when it was quorum and no interrupted run had left a migration queue."""

    queue: str
    moved: int
    already: bool


def migrate_queues(url: str, specs: Sequence[QueueSpec],
                   report: Callable[[Migrated], None] | None = None) -> list[Migrated]:
    """Make every queue of ``specs`` (and their dead-letter queues) quorum, keeping their
    messages; see the module docstring."""
    bus = RabbitBus(url, queue_type="quorum")  # only for its URL without our options
    wanted: dict[str, tuple[QueueSpec | None, str | None]] = {}
    for spec in specs:
        if spec.dead_letter:
            wanted.setdefault(spec.dead_letter, (None, spec.dead_letter))
        wanted[spec.name] = (spec, None)
    connection = pika.BlockingConnection(pika.URLParameters(bus.url))
    results = []
    try:
        for name, (queue, exchange) in wanted.items():
            result = _migrate(connection, name, queue, exchange)
            results.append(result)
            if report is not None:
                report(result)
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    return results


def _migrate(connection: pika.BlockingConnection, name: str,
             spec: QueueSpec | None, exchange: str | None) -> Migrated:
    temporary = name + SUFFIX
    leftover = _exists(connection, temporary)
    kind, consumers = _kind(connection, name, spec)
    if kind == "quorum" and not leftover:
        return Migrated(name, 0, already=True)
    if consumers:
        raise ConfigError([f"RabbitMQ queue {name} has {consumers} consumer(s): stop every "
                           "engine (and conduit reprocess) before migrating its queues"])
    channel = connection.channel()
    channel.queue_declare(temporary, durable=True, arguments={"x-queue-type": "quorum"})
    if kind == "classic":
        for _ in range(DELETE_ATTEMPTS):
            _move(connection, name, temporary)
            try:
                connection.channel().queue_delete(name, if_unused=True, if_empty=True)
                break
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 406:
                    raise  # a message or a consumer came meanwhile: move again
        else:
            raise ConfigError([f"RabbitMQ queue {name} keeps getting messages or consumers: "
                               "stop every engine before migrating"])
        _kind(connection, name, spec)  # declared again, as quorum
    if exchange:  # a dead-letter queue: bound again (also when an earlier run stopped here)
        channel = connection.channel()
        channel.exchange_declare(exchange, "fanout", durable=True)
        channel.queue_bind(name, exchange)
    back = _move(connection, temporary, name)
    # Quorum queues refuse if-empty and if-unused deletes; nothing but this command uses a
    # migration queue, and _move has just emptied it (checked once more).
    channel = connection.channel()
    if channel.queue_declare(temporary, passive=True).method.message_count:
        raise ConfigError([f"RabbitMQ queue {temporary} got messages while migrating: "
                           "stop every engine and run the command again"])
    channel.queue_delete(temporary)
    return Migrated(name, back, already=False)


def _exists(connection: pika.BlockingConnection, name: str) -> bool:
    try:
        connection.channel().queue_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 404:
            raise
        return False


def _kind(connection: pika.BlockingConnection, name: str,
          spec: QueueSpec | None) -> tuple[str, int]:
    """The queue's type (declaring it as quorum when it does not exist) and its consumers."""
    _, kind, frame, refused = declare_as_first(connection, connection.channel(), name, spec,
                                               ("quorum", "classic"))
    if kind is None:
        raise ConfigError([f"RabbitMQ queue {name} exists with other settings "
                           f"({refused[0].reply_text}): not migrated"])
    return kind, frame.method.consumer_count


def _move(connection: pika.BlockingConnection, source: str, target: str) -> int:
    """Every message of ``source`` into ``target``, each acknowledged only once the broker has
    confirmed its copy."""
    channel = connection.channel()
    channel.confirm_delivery()
    moved = 0
    while True:
        method, properties, body = channel.basic_get(source, auto_ack=False)
        if method is None:
            return moved
        headers = {k: v for k, v in (properties.headers or {}).items()
                   if k not in ROUTING_HEADERS}
        copy = BasicProperties(
            content_type=properties.content_type, content_encoding=properties.content_encoding,
            headers=headers or None, delivery_mode=2, priority=properties.priority,
            correlation_id=properties.correlation_id, reply_to=properties.reply_to,
            expiration=properties.expiration, message_id=properties.message_id,
            timestamp=properties.timestamp, type=properties.type, user_id=properties.user_id,
            app_id=properties.app_id)
        # raises (UnroutableError, NackError) unless the broker holds the copy
        channel.basic_publish("", target, body, copy, mandatory=True)
        channel.basic_ack(method.delivery_tag)
        moved += 1
