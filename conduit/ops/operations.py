"""What the API and the dashboard both do with messages: search filters, detail, reprocess."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

from conduit.bus import Envelope
from conduit.core.duration import moment as when
from conduit.core.reason import HIDDEN, public
from conduit.store import MessageRecord

if TYPE_CHECKING:
    from conduit.engine.engine import Engine

STATUSES = ("RECEIVED", "FILTERED", "TRANSFORMED", "QUEUED", "SENT", "ERROR")


@dataclass
class Filters:
    channel: str | None = None
    status: str | None = None
    since: str | None = None
    until: str | None = None
    type: str | None = None
    control_id: str | None = None
    patient: str | None = None
    text: str | None = None
    before: int | None = None
    limit: int = 50
    #: search fields, ``(name, value)``: ``OBR-3:ACC123`` in the API, ``OBR-3=ACC123`` on the CLI
    fields: tuple[tuple[str, str], ...] = ()

    def clean(self) -> Filters:
        values = {k: (v.strip() or None) if isinstance(v, str) else v
                  for k, v in asdict(self).items()}
        values["fields"] = tuple((n.strip(), v.strip()) for n, v in self.fields)
        result = Filters(**cast(Any, values))
        if result.status:
            result.status = result.status.upper()
            if result.status not in STATUSES:
                raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        result.limit = max(1, min(result.limit, 1000))
        return result

    def needs_bodies(self) -> bool:
        """Filters that reveal content (patient id, search fields, full text) need the operator
        role."""
        return bool(self.patient or self.text or self.fields)

    def query(self) -> dict[str, Any]:
        return {"channel": self.channel, "status": self.status, "since": when(self.since),
                "until": when(self.until), "control_id": self.control_id,
                "message_type": self.type, "patient_id": self.patient, "text": self.text,
                "before_id": self.before, "limit": self.limit, "fields": list(self.fields)}

    def audited(self) -> str:
        """What the access audit notes of a search: the filters given (a patient id or words
        searched for are what an audit must show)."""
        return " ".join(f"{k}={v}" for k, v in self.params().items())

    def params(self, **change: Any) -> dict[str, Any]:
        values = {**asdict(self), **change}
        fields = values.pop("fields", ())
        found = {k: v for k, v in values.items() if v not in (None, "") and k != "limit"}
        if "text" in found:  # the page and the API read full text as ``q``
            found["q"] = found.pop("text")
        if fields:
            found["field"] = [f"{name}:{value}" for name, value in fields]
        return found


def field_pairs(texts: list[str] | None, separator: str) -> tuple[tuple[str, str], ...]:
    """``NAME<separator>VALUE`` texts as search field pairs; ValueError for one without."""
    pairs = []
    for entry in texts or []:
        name, found, value = entry.partition(separator)
        if not found or not name.strip() or not value.strip():
            raise ValueError(f"a search field is NAME{separator}VALUE, not {entry!r}")
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def reason(text: str | None, *, phi: bool) -> str | None:
    """A stored reason or error as the reader may see it: whole for operators, without values
    for viewers (:mod:`conduit.core.reason`)."""
    return text if phi else public(text)


def source(text: str | None, *, phi: bool) -> str | None:
    """Where a message came from as the reader may see it: a file source's file name may name
    the patient, so viewers see ``file:…``; addresses are shown to all."""
    if phi or text is None or not text.startswith("file:"):
        return text
    return "file:" + HIDDEN


def summary(record: MessageRecord, *, phi: bool) -> dict[str, Any]:
    """A message's metadata; patient id and the values in its reason only with ``phi``."""
    return {"id": record.id, "channel": record.channel,
            "received_at": record.received_at.isoformat(),
            "updated_at": record.updated_at.isoformat(), "status": record.status,
            "control_id": record.control_id, "message_type": record.message_type,
            "patient_id": record.patient_id if phi else None,
            "source": source(record.source, phi=phi), "error": reason(record.error, phi=phi),
            "correlation_id": record.correlation_id}


def text_of(content: bytes | None) -> str | None:
    return None if content is None else content.decode("utf-8", errors="replace")


def detail(record: MessageRecord, *, bodies: bool) -> dict[str, Any]:
    result = summary(record, phi=bodies)
    result["deliveries"] = [{
        "destination": d.destination, "status": d.status, "attempts": d.attempts,
        "error": reason(d.error, phi=bodies), "updated_at": d.updated_at.isoformat(),
        "sent_at": d.sent_at.isoformat() if d.sent_at else None,
        **({"content": text_of(d.content), "response": text_of(d.response)} if bodies else {}),
    } for d in record.deliveries]
    result["events"] = [{"at": at.isoformat(), "kind": kind, "detail": det}
                        for at, kind, det in record.events]
    if bodies:
        result["raw"] = text_of(record.raw)
        result["transformed"] = text_of(record.transformed)
    return result


class ReprocessError(Exception):
    pass


async def reprocess(engine: Engine, message_id: int, *, user: str,
                    destinations: list[str] | None = None,
                    dead_letters: bool = False) -> dict[str, Any]:
    """Send a stored message through its channel again (store first, then bus, as
    ``conduit reprocess`` does: :mod:`conduit.store.replay`).

    Without ``destinations``: from the raw message through the whole pipeline (filters and
    transforms as deployed now), like Mirth's reprocess. With ``destinations``: resend what was
    sent to those destinations before (the stored encoded content), e.g. after fixing a receiver;
    ``dead_letters`` limits that to deliveries that had given up. On RabbitMQ this publishes at
    once; on the embedded bus the running channel picks the request up from the store.
    """
    from conduit.engine.topology import republish
    from conduit.store import replay

    store = engine.store
    requeued = await replay.requeue(store, message_id, destinations=destinations or (),
                                    from_raw=not destinations and not dead_letters,
                                    dead_letters=dead_letters, detail=f"by {user}")
    if requeued is None:
        raise ReprocessError(f"message {message_id}: not found, or nothing to send again")
    if engine.bus.shared:  # the embedded bus: the running channel takes it from the store
        channel = engine.control.channels.get(requeued.channel)
        await republish(
            engine.bus, requeued.channel,
            {d.name: d for d in channel.destinations} if channel else {},
            [Envelope(message_id, requeued.raw)] if requeued.raw is not None else [],
            [(d, Envelope(message_id, content)) for d, content in requeued.deliveries])
    if requeued.raw is not None:
        return {"id": message_id, "mode": "reprocess"}
    return {"id": message_id, "mode": "resend",
            "destinations": [d for d, _ in requeued.deliveries]}


def note_reprocessed(engine: Engine, user: str, done: list[int], failed: int = 0, *,
                     how: str = "reprocessed", channel: str | None = None) -> None:
    """One ``messages.reprocessed`` event for a reprocess action (not one per message): how
    many, their ids (the first ten), how many could not be."""
    if not done and not failed:
        return
    ids = ", ".join(map(str, done[:10])) + (f" and {len(done) - 10} more" if len(done) > 10
                                             else "")
    text = f"{how} {len(done)} message{'' if len(done) == 1 else 's'}" + (
        f" ({ids})" if done else "") + (f"; {failed} could not be" if failed else "")
    engine.events.record("messages.reprocessed", text, channel=channel, user=user,
                         level="warning" if failed else "info")
