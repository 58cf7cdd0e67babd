"""Which queues a channel has, and which queue each envelope goes to.

- ``conduit.<channel>.source``: single-active-consumer when any destination is ordered or
  partitioned (the pipeline must not reorder what it hands on), else shared by every worker.
- ``conduit.<channel>.dest.<name>``: one per destination; single-active-consumer when
  ``ordered: true`` (strict FIFO however many worker processes run).
- ``conduit.<channel>.dest.<name>.p<i>``, i < ``partitions``: with ``partition_by``, an
  envelope goes to partition ``crc32(key) mod partitions`` of its key (e.g. PID-3.1), each
  partition single-active-consumer: in order per key, parallel across keys. A stable hash (not
  Python's salted ``hash``) so every process picks the same partition.
- ``conduit.<channel>.dlq``: the channel's dead letters (and a dead-letter exchange of that name).
"""

from __future__ import annotations

import contextlib
import functools
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from conduit.bus import Bus, Envelope, QueueSpec, dead_letter_queue, dest_queue, source_queue
from conduit.connectors.base import DestinationConfig
from conduit.core.errors import HL7ParseError
from conduit.engine.channel import Channel
from conduit.hl7.message import Message
from conduit.transforms.template import compile_template, render_template


def keeps_order(channel: Channel) -> bool:
    """Whether the pipeline must hand messages on in the order they came."""
    return any(d.ordered or d.partition_by for d in channel.destinations)


def queue_specs(channel: Channel) -> list[QueueSpec]:
    dlq = dead_letter_queue(channel.name)
    specs = [QueueSpec(source_queue(channel.name), single_active=keeps_order(channel))]
    for config in channel.destinations:
        if config.partition_by:
            specs.extend(QueueSpec(dest_queue(channel.name, config.name, i), single_active=True,
                                   dead_letter=dlq) for i in range(config.partitions))
        else:
            specs.append(QueueSpec(dest_queue(channel.name, config.name),
                                   single_active=config.ordered, dead_letter=dlq))
    return specs


def consumed_queues(channel: str, config: DestinationConfig) -> list[str]:
    if config.partition_by:
        return [dest_queue(channel, config.name, i) for i in range(config.partitions)]
    return [dest_queue(channel, config.name)]


def partition(key: str | None, partitions: int) -> int:
    return zlib.crc32((key or "").encode("utf-8", "surrogateescape")) % partitions


def route_queue(channel: str, config: DestinationConfig, content: bytes,
                message: Message | None = None) -> str:
    """The queue for one destination's envelope; the partition key is read from the source
    message when there is one, else from the content (HL7), else partition 0."""
    if not config.partition_by:
        return dest_queue(channel, config.name)
    if message is None:
        with contextlib.suppress(HL7ParseError, ValueError):
            message = Message.parse(content)
    key = partition_key(config.partition_by, message) if message is not None else None
    return dest_queue(channel, config.name, partition(key, config.partitions))


def partition_key(partition_by: str, message: Message) -> str | None:
    """The value of a field path (``PID-3.1``) or a template (``{{ msg['PID-3.1'] }}``)."""
    if "{{" not in partition_by:
        return message.get(partition_by)
    try:
        return render_template(_compiled(partition_by), message).strip()
    except Exception:  # a template that cannot render for this message: partition 0
        return None


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    return compile_template(source)


def destination_queue(channel: str, destination: str, content: bytes,
                      config: DestinationConfig | None) -> str:
    """The queue a stored delivery goes back to: its partition when the destination's config is
    known (read from the stored content), else the destination's plain queue."""
    if config is None:
        return dest_queue(channel, destination)
    return route_queue(channel, config, content)


async def republish(bus: Bus, channel: str, configs: Mapping[str, DestinationConfig],
                    received: Sequence[Envelope],
                    queued: Sequence[tuple[str, Envelope]]) -> None:
    """Put stored work back on the bus: messages to the channel's source queue (through the
    pipeline again), deliveries ``(destination, envelope)`` to their destinations' queues. The
    one way recovery, the dashboard's reprocess and ``conduit reprocess`` re-publish."""
    if received:
        await bus.publish(source_queue(channel), list(received))
    items = [(destination_queue(channel, destination, envelope.body, configs.get(destination)),
              envelope) for destination, envelope in queued]
    if items:
        await bus.publish_routed(by_message(items))


def by_message(items: list[tuple[str, Envelope]]) -> list[tuple[str, Envelope]]:
    """``items`` with each message's envelopes side by side (so that its destinations share
    one publish, see ``Bus.publish_routed``): ordered by message id when every queue's
    envelopes already are (the store reads them back oldest first), else as they came, as
    reordering would change a queue's order."""
    last: dict[str, int] = {}
    for queue, envelope in items:
        if last.get(queue, envelope.message_id) > envelope.message_id:
            return items
        last[queue] = envelope.message_id
    return sorted(items, key=lambda item: item[1].message_id)  # stable: per queue as came
