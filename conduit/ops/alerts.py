"""Alerts from the settings: error rate, queue depth over N for T, channel idle for T, breaker
open, an ordered destination blocked on a message. Each rule is checked every
``alerts.interval`` for every channel it covers; a rule that starts firing is notified at once
(webhook POST of JSON, or email over SMTP), again every ``alerts.repeat`` while it fires, and
once more when it resolves. Firing (the first notification, not its repeats) and resolving are
recorded in the event log (``alert.fired``, ``alert.resolved``).

Settings example::

    alerts:
      interval: 15s
      notifiers:
        ops-hook: {type: webhook, url: "https://chat.example.org/hooks/abc"}
        ops-mail: {type: email, host: smtp.example.org, port: 587, starttls: true,
                   from: conduit@example.org, to: [ops@example.org]}
      rules:
        - {name: lab errors, kind: error-rate, channel: lab, threshold: 0.05, window: 5m}
        - {name: backlog, kind: queue-depth, threshold: 1000, for: 2m}
        - {name: adt quiet, kind: idle, channel: adt-in, for: 30m}
        - {name: breaker, kind: breaker-open}
        - {name: feed blocked, kind: destination-blocked}
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from sqlalchemy import select

from conduit.engine.settings import AlertRule, AlertSettings, EmailNotifier, WebhookNotifier
from conduit.store.tables import messages

if TYPE_CHECKING:
    from conduit.engine.engine import Engine
    from conduit.ops.sampler import Sampler

log = structlog.get_logger(__name__)


@dataclass
class Firing:
    since: float  # monotonic time the condition became true
    notified: float | None = None  # monotonic time of the last notification


class Alerter:
    def __init__(self, engine: Engine, settings: AlertSettings, sampler: Sampler) -> None:
        self.engine = engine
        self.settings = settings
        self.sampler = sampler
        self.started = time.monotonic()
        self.active: dict[tuple[str, str, str], Firing] = {}
        self.sent: list[dict[str, Any]] = []  # what was notified (kept short), for the dashboard

    async def evaluate(self) -> list[dict[str, Any]]:
        """Check every rule once; returns the notifications sent."""
        clock = time.monotonic()
        notices: list[dict[str, Any]] = []
        seen: set[tuple[str, str, str]] = set()
        for rule in self.settings.rules:
            for channel in self._channels(rule):
                for subject, value, breached in await self._check(rule, channel):
                    key = (rule.name, channel, subject)
                    if not breached:
                        continue
                    seen.add(key)
                    firing = self.active.setdefault(key, Firing(since=clock))
                    if clock - firing.since < rule.for_ and rule.kind != "idle":
                        continue
                    if firing.notified is None or clock - firing.notified >= self.settings.repeat:
                        if firing.notified is None:
                            self._record(self._notice(rule, channel, subject, value, "firing"))
                        firing.notified = clock
                        notices.append(self._notice(rule, channel, subject, value, "firing"))
        for key in list(self.active):
            if key not in seen:
                firing = self.active.pop(key)
                if firing.notified is not None:
                    ended = next((r for r in self.settings.rules if r.name == key[0]), None)
                    if ended is not None:
                        notices.append(self._notice(ended, key[1], key[2], None, "resolved"))
                        self._record(notices[-1])
        for notice in notices:
            await self._notify(notice)
        self.sent = (self.sent + notices)[-100:]
        return notices

    def _channels(self, rule: AlertRule) -> list[str]:
        names = sorted(self.engine.runtimes)
        return [rule.channel] if rule.channel in names else ([] if rule.channel else names)

    async def _check(self, rule: AlertRule, channel: str) -> list[tuple[str, float, bool]]:
        """(subject, value, breached) for one channel: subject is '' or a destination/queue."""
        if rule.kind == "error-rate":
            errors = self.sampler.delta(channel, "errored", rule.window)
            sent = self.sampler.delta(channel, "sent", rule.window)
            total = errors + sent
            rate = errors / total if total else 0.0
            return [("", round(rate, 4), total >= rule.min_messages and rate > rule.threshold)]
        if rule.kind == "queue-depth":

            return [(queue, float(depth or 0), (depth or 0) > rule.threshold)
                    for queue, depth in self.engine.control.queue_depths(channel).items()]
        if rule.kind == "breaker-open":
            runtime = self.engine.runtimes.get(channel)
            states = runtime.breaker_states() if runtime else {}
            return [(destination, 1.0, state == "open") for destination, state in states.items()]
        if rule.kind == "destination-blocked":
            runtime = self.engine.runtimes.get(channel)
            held = runtime.blocked_destinations() if runtime else {}
            return [(destination, float(message or 0), True)
                    for destination, (message, _) in held.items()]
        idle = await asyncio.to_thread(self._idle_seconds, channel)
        return [("", round(idle, 1), idle >= rule.for_)]

    def _idle_seconds(self, channel: str) -> float:
        query = (select(messages.c.received_at).where(messages.c.channel == channel)
                 .order_by(messages.c.id.desc()).limit(1))
        with self.engine.store.engine.connect() as connection:
            last = connection.execute(query).scalar()
        if last is None:
            return time.monotonic() - self.started
        last = last if last.tzinfo else last.replace(tzinfo=UTC)
        return (datetime.now(UTC) - last).total_seconds()

    def _notice(self, rule: AlertRule, channel: str, subject: str, value: float | None,
                status: str) -> dict[str, Any]:
        what = {"error-rate": "error rate", "queue-depth": "queue depth",
                "idle": "seconds without a message", "breaker-open": "breaker open",
                "destination-blocked": "blocked on message"}[rule.kind]
        where = f"{channel}" + (f" / {subject}" if subject else "")
        if rule.kind == "destination-blocked":
            summary = (f"[{status.upper()}] {rule.name}: {where}: {what}"
                       + (f" {int(value)}" if value is not None else ""))
        else:
            summary = (f"[{status.upper()}] {rule.name}: {where}: {what}" + (
                f" {value} (threshold {rule.threshold if rule.kind != 'idle' else rule.for_})"
                if value is not None and rule.kind != "breaker-open" else ""))
        return {"alert": rule.name, "kind": rule.kind, "status": status, "channel": channel,
                "subject": subject or None, "value": value, "threshold": rule.threshold,
                "for_seconds": rule.for_, "at": datetime.now(UTC).isoformat(),
                "summary": summary, "notify": rule.notify}

    def _record(self, notice: dict[str, Any]) -> None:
        fired = notice["status"] == "firing"
        self.engine.events.record("alert.fired" if fired else "alert.resolved",
                                  notice["summary"].split("] ", 1)[-1],
                                  channel=notice["channel"], level="warning" if fired else "info")

    async def _notify(self, notice: dict[str, Any]) -> None:
        targets = notice.pop("notify") or list(self.settings.notifiers)
        log.warning("alert", alert=notice["alert"], status=notice["status"],
                    channel=notice["channel"], subject=notice["subject"], value=notice["value"])
        for name in targets:
            notifier = self.settings.notifiers.get(name)
            try:
                if isinstance(notifier, WebhookNotifier):
                    async with httpx.AsyncClient(timeout=notifier.timeout) as client:
                        answer = await client.post(notifier.url, json=notice)
                        answer.raise_for_status()
                elif isinstance(notifier, EmailNotifier):
                    await asyncio.to_thread(send_email, notifier, notice)
                else:
                    log.error("unknown alert notifier", notifier=name)
            except Exception as exc:
                log.error("alert not delivered", notifier=name,
                          error=f"{type(exc).__name__}: {exc}")


def send_email(notifier: EmailNotifier, notice: dict[str, Any]) -> None:
    message = EmailMessage()
    message["Subject"] = f"Conduit: {notice['summary']}"
    message["From"] = notifier.sender
    message["To"] = ", ".join(notifier.to)
    lines = [notice["summary"], ""] + [f"{k}: {v}" for k, v in notice.items() if k != "summary"]
    message.set_content("\n".join(lines))
    with smtplib.SMTP(notifier.host, notifier.port, timeout=notifier.timeout) as smtp:
        if notifier.starttls:
            smtp.starttls()
        if notifier.username:
            smtp.login(notifier.username, notifier.password or "")
        smtp.send_message(message)
