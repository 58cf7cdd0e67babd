"""Preview a channel change against stored traffic, before it is deployed.

The edited channel's :class:`~conduit.engine.pipeline.Pipeline` (the code the runtime runs, so
the preview is exactly what would run) is given the stored raw content of the deployed
channel's messages; its outcome is set beside what was stored: filtered or passed (and why),
the transformed content (a unified diff, HL7 segments one per line) and the routes (which
destinations would get the message, which ``when:`` filters stop it).

Nothing is sent and nothing is written: the store is only read (``search`` and ``get``) and the
pipeline does no I/O. The report holds message content (PHI): the CLI shows it to whoever runs
it locally, the management API to admins only, audited.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conduit.engine.pipeline import ERROR, FILTERED, TRANSFORMED, Pipeline, PipelineResult
from conduit.store.store import DeliveryRecord, MessageRecord, Store

UNCHANGED = "unchanged"
CHANGED = "changed"
NEWLY_FILTERED = "newly filtered"
NO_LONGER_FILTERED = "no longer filtered"
FAILED = "error"
OUTCOMES = (UNCHANGED, CHANGED, NEWLY_FILTERED, NO_LONGER_FILTERED, FAILED)

#: Messages previewed when neither a count nor a time is given, and at most with a time alone.
DEFAULT_LAST = 100
MOST = 10_000
_PAGE = 500
#: A delivery in one of these states got (or was to get) the content.
_ROUTED = ("QUEUED", "SENT", "ERROR")


@dataclass(slots=True)
class RoutePreview:
    """One destination: what was stored for it and what the edited channel would do."""

    destination: str
    stored: str | None  # the delivery's status; None: no delivery row (new destination)
    stored_why: str | None  # its when-filter's reason (or its delivery error)
    routed: bool | None  # True: would get it; False: its when-filter stops it; None: no route
    why: str | None  # the when-filter's reason
    diff: list[str] = field(default_factory=list)  # only when its content differs otherwise

    @property
    def changed(self) -> bool:
        was = self.stored in _ROUTED if self.stored is not None else None
        return was != self.routed or bool(self.diff)

    def as_dict(self) -> dict[str, Any]:
        return {"destination": self.destination, "stored": self.stored,
                "stored_why": self.stored_why, "routed": self.routed, "why": self.why,
                "changed": self.changed, "diff": self.diff}


@dataclass(slots=True)
class MessagePreview:
    """One stored message: its stored outcome, the edited channel's, and the difference."""

    id: int
    received_at: datetime
    control_id: str | None
    message_type: str | None
    stored_status: str
    stored_error: str | None
    status: str  # the edited channel's pipeline status: TRANSFORMED, FILTERED or ERROR
    reason: str | None  # its filter's reason, or the error
    outcome: str
    diff: list[str] = field(default_factory=list)
    routes: list[RoutePreview] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "received_at": self.received_at.isoformat(),
                "control_id": self.control_id, "message_type": self.message_type,
                "stored_status": self.stored_status, "stored_error": self.stored_error,
                "status": self.status, "reason": self.reason, "outcome": self.outcome,
                "diff": self.diff, "routes": [r.as_dict() for r in self.routes]}


@dataclass(slots=True)
class PreviewReport:
    """Every message previewed, oldest first; ``truncated``: more matched than were taken."""

    channel: str
    messages: list[MessagePreview] = field(default_factory=list)
    truncated: bool = False

    def counts(self) -> dict[str, int]:
        counts = {"messages": len(self.messages)} | dict.fromkeys(OUTCOMES, 0)
        for message in self.messages:
            counts[message.outcome] += 1
        return counts

    def summary(self) -> str:
        """``N messages, N unchanged, N changed, N newly filtered, N no longer filtered,
        N errors``."""
        c = self.counts()
        return (f"{c['messages']} messages, {c[UNCHANGED]} unchanged, {c[CHANGED]} changed, "
                f"{c[NEWLY_FILTERED]} newly filtered, {c[NO_LONGER_FILTERED]} no longer "
                f"filtered, {c[FAILED]} errors" + (" (more matched: not all previewed)"
                                                   if self.truncated else ""))

    def as_dict(self) -> dict[str, Any]:
        counts = self.counts()
        return {"channel": self.channel, "messages": [m.as_dict() for m in self.messages],
                "summary": {"messages": counts["messages"], "unchanged": counts[UNCHANGED],
                            "changed": counts[CHANGED],
                            "newly_filtered": counts[NEWLY_FILTERED],
                            "no_longer_filtered": counts[NO_LONGER_FILTERED],
                            "errors": counts[FAILED], "truncated": self.truncated}}


def preview(pipeline: Pipeline, store: Store, *, since: datetime | None = None,
            last: int | None = None) -> PreviewReport:
    """Run ``pipeline`` over the stored messages of the channel of its name: the ``last``
    newest (default :data:`DEFAULT_LAST` without ``since``), received at or after ``since``."""
    name = pipeline.channel.name
    limit = last if last is not None else (MOST if since is not None else DEFAULT_LAST)
    ids = list(_newest_ids(store, name, since, limit + 1))
    report = PreviewReport(name, truncated=len(ids) > limit)
    for message_id in reversed(ids[:limit]):
        record = store.get(message_id)
        if record is not None:  # pruned meanwhile
            report.messages.append(preview_message(pipeline, record))
    return report


def _newest_ids(store: Store, channel: str, since: datetime | None,
                limit: int) -> Iterator[int]:
    before: int | None = None
    while limit > 0:
        page = store.search(channel=channel, since=since, before_id=before,
                            limit=min(limit, _PAGE))
        yield from (r.id for r in page)
        if len(page) < min(limit, _PAGE):
            return
        limit -= len(page)
        before = page[-1].id


def preview_message(pipeline: Pipeline, record: MessageRecord) -> MessagePreview:
    """One stored message (with content and deliveries) through the edited channel."""
    head: dict[str, Any] = {
        "id": record.id, "received_at": record.received_at, "control_id": record.control_id,
        "message_type": record.message_type, "stored_status": record.status,
        "stored_error": record.error}
    if not record.raw:
        return MessagePreview(**head, status=ERROR, reason="the stored raw content is gone "
                              "(pruned): nothing to run", outcome=FAILED)
    result = pipeline.process(record.raw)
    channel_filtered = record.status == FILTERED and not record.deliveries
    passed_before = record.status not in (FILTERED, ERROR, "RECEIVED") or bool(record.deliveries)
    before = record.transformed if record.transformed is not None else (
        record.raw if passed_before else None)
    after = result.transformed
    diff = _diff(before, after, f"stored #{record.id}", "preview")
    routes = _routes(record.deliveries, result, before)
    if result.status == ERROR:
        outcome = FAILED
    elif result.status == FILTERED:
        outcome = UNCHANGED if channel_filtered else NEWLY_FILTERED
        diff = []  # nothing transformed: the reason says it
    elif channel_filtered:
        outcome = NO_LONGER_FILTERED
    elif diff or any(r.changed for r in routes) or not passed_before:
        outcome = CHANGED
    else:
        outcome = UNCHANGED
    return MessagePreview(**head, status=result.status, reason=result.reason, outcome=outcome,
                          diff=diff, routes=routes)


def _routes(stored: list[DeliveryRecord], result: PipelineResult,
            stored_transformed: bytes | None) -> list[RoutePreview]:
    """Each destination stored or routed now, in the edited channel's order, then the ones it
    no longer has."""
    deliveries = {d.destination: d for d in stored}
    if result.status != TRANSFORMED:  # filtered or failed: no destination gets it
        return [RoutePreview(d.destination, d.status, d.error, None, None) for d in stored]
    routes = []
    for route in result.routes:
        delivery = deliveries.pop(route.destination, None)
        before = delivery.content if delivery is not None else None
        routes.append(RoutePreview(
            route.destination, delivery.status if delivery else None,
            delivery.error if delivery else None, route.content is not None, route.filtered,
            _route_diff(delivery, before, route.content, stored_transformed,
                        result.transformed)))
    for name, delivery in deliveries.items():
        routes.append(RoutePreview(name, delivery.status, delivery.error, None,
                                   "no such destination in the edited channel"))
    return routes


def _route_diff(delivery: DeliveryRecord | None, before: bytes | None, after: bytes | None,
                stored_transformed: bytes | None, transformed: bytes | None) -> list[str]:
    """A destination's own diff, only when its content is not simply the transformed content
    (a template body, say): otherwise the message's diff says it all."""
    if delivery is None or delivery.status not in _ROUTED or after is None or before == after:
        return []
    if before == stored_transformed and after == transformed:
        return []  # the message's transformed content, whose diff is shown
    return _diff(before, after, f"stored {delivery.destination}", f"preview {delivery.destination}")


def _diff(before: bytes | None, after: bytes | None, from_name: str, to_name: str) -> list[str]:
    """A unified diff, HL7 segments (or text lines) one per line; empty when equal."""
    old, new = _lines(before), _lines(after)
    if old == new:
        return []
    return list(difflib.unified_diff(old, new, fromfile=from_name, tofile=to_name, lineterm=""))


def _lines(content: bytes | None) -> list[str]:
    if content is None:
        return []
    text = content.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip("\n").split("\n") if text.strip("\n") else []


def preview_text(report: PreviewReport, *, show_unchanged: bool = False) -> str:
    """The report for a terminal: each message that would change in full, unchanged ones on
    one line, the summary last."""
    lines: list[str] = []
    for m in report.messages:
        stamp = f"{m.received_at:%Y-%m-%d %H:%M:%S}"
        lines.append(f"=== #{m.id} {m.message_type or '-'} MSH-10 {m.control_id or '-'} "
                     f"({stamp} UTC): {m.outcome.upper()}")
        if m.outcome == UNCHANGED and not show_unchanged:
            continue
        stored = m.stored_status + (f" ({m.stored_error})" if m.stored_error else "")
        lines.append(f"    stored:  {stored}")
        lines.append(f"    preview: {m.status}" + (f" ({m.reason})" if m.reason else ""))
        lines.extend(m.diff)
        for r in m.routes:
            lines.append(f"    route {r.destination}: {_was(r)} -> {_now(r)}")
            lines.extend("    " + line for line in r.diff)
    if not report.messages:
        lines.append(f"no stored messages of channel {report.channel!r} match")
    lines.append(report.summary())
    return "\n".join(lines)


def _was(route: RoutePreview) -> str:
    if route.stored is None:
        return "no delivery"
    if route.stored == FILTERED:
        return f"filtered ({route.stored_why})"
    return route.stored + (f" ({route.stored_why})" if route.stored_why else "")


def _now(route: RoutePreview) -> str:
    if route.routed is None:
        return f"not routed ({route.why})" if route.why else "not routed"
    if not route.routed:
        return f"filtered ({route.why})"
    return "would get it" + (" (content changed)" if route.diff else "")
