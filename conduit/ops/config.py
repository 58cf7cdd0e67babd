"""Settings of the dashboard, its alerts and the store's retention (part of engine settings).

Pydantic models only (no web imports) so that :mod:`conduit.engine.settings` can use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from conduit.core.duration import Duration


class DashboardSettings(BaseModel):
    """The dashboard and management API served by the engine (uvicorn)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Serve the dashboard and management API.")
    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 for every one.")
    port: int = Field(8080, ge=0, le=65535, description="Port; 0 picks a free one.")
    tls_cert: Path | None = Field(None, description="PEM certificate: serve HTTPS.")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert.")
    metrics_public: bool = Field(
        False, description="Serve /metrics without login (for a Prometheus scraper).")
    session_secret: str | None = Field(
        None, description="Secret for login forms; default: generated once into the data dir.")
    session_hours: float = Field(12, gt=0, description="A login lasts this long.")
    secure_cookies: bool | None = Field(
        None, description="Mark cookies Secure; default: when TLS is on.")
    login_attempts: int = Field(5, ge=1, description="Failed logins allowed per window.")
    login_window: Duration = Field(300, gt=0, description="Window for login_attempts (seconds).")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None


class WebhookNotifier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["webhook"] = "webhook"
    url: str
    timeout: float = 5.0


class EmailNotifier(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["email"] = "email"
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = Field("conduit@localhost", alias="from")
    to: list[str]
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0


class AlertRule(BaseModel):
    """One condition watched for every matching channel (and destination)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    kind: Literal["error-rate", "queue-depth", "idle", "breaker-open"] = Field(
        description="error-rate: errors/(errors+sent) over `window` above `threshold`; "
                    "queue-depth: a destination queue above `threshold` for `for`; "
                    "idle: nothing received for `for`; breaker-open: a breaker is open.")
    channel: str | None = Field(None, description="Only this channel (default: every one).")
    threshold: float = 0
    window: Duration = Field(300, description="Look-back for error-rate (seconds or 5m).")
    for_: Duration = Field(0, alias="for", description="How long the condition must hold.")
    min_messages: int = Field(1, description="error-rate: at least this many outcomes.")
    notify: list[str] = Field(default_factory=list, description="Notifier names (default all).")


class AlertSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval: Duration = Field(15, description="How often rules are evaluated (seconds).")
    repeat: Duration = Field(3600, description="Notify again after this long while still firing.")
    notifiers: dict[str, WebhookNotifier | EmailNotifier] = Field(default_factory=dict)
    rules: list[AlertRule] = Field(default_factory=list)


class RetentionRule(BaseModel):
    """Messages of `channel` (default every one) in `statuses` older than `older_than` go."""

    model_config = ConfigDict(extra="forbid")

    channel: str | None = None
    older_than: Duration
    statuses: list[str] = Field(default_factory=lambda: ["SENT", "FILTERED", "TRANSFORMED"])
    include_unfinished: bool = Field(
        False, description="Also allow QUEUED, RECEIVED and ERROR in `statuses` (never by "
                           "default: those are work still to do or to look at).")


class RetentionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval: Duration = Field(3600, description="How often the engine prunes (0 = never).")
    batch: int = Field(5000, ge=1, description="Rows deleted per transaction.")
    rules: list[RetentionRule] = Field(default_factory=list)
