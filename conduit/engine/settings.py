"""Engine settings: built once at start from a settings file and the environment, then passed in.

Precedence: environment (``CONDUIT_*``) over the settings file (``--config`` or
``CONDUIT_CONFIG``) over the embedded defaults (SQLite store and in-process bus under
``CONDUIT_DATA_DIR`` or ``./data``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from conduit.engine.bus.embedded import CAPACITY
from conduit.engine.errors import ConfigError
from conduit.engine.timezone import check_zone
from conduit.engine.web.config import AlertSettings, DashboardSettings, RetentionSettings


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(Path("data"), description="Where the embedded store and files live.")
    store_url: str | None = Field(
        None, description="SQLAlchemy URL of the store; default sqlite:///<data_dir>/conduit.db.",
        examples=["postgresql://conduit@db:5432/conduit"])
    bus_url: str | None = Field(
        None, description="amqp://user:pass@host:5672/vhost for RabbitMQ; default in-process.")
    timezone: str | None = Field(
        None, examples=["Europe/Berlin"],
        description="Default time zone (IANA name) of the senders' clocks, for HL7 v2 times "
                    "sent without an offset in channels that set no 'timezone' and messages "
                    "whose MSH-7 has none; unset: the host's zone. Env: CONDUIT_TIMEZONE.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    role: Literal["all", "listeners", "workers"] = "all"
    workers: int = Field(
        8, ge=1, le=256, examples=[8],
        description="Sends at once per destination unless it sets 'concurrency' (ordered ones "
                    "use 1); each channel's pipeline and each destination hold up to 8 times "
                    "as many messages in hand, so waiting for store commits and broker confirms "
                    "overlaps. For more CPU run more processes (--role workers) on the same "
                    "queues.")
    queue_buffer: int = Field(
        CAPACITY, ge=100, examples=[10_000],
        description="In-process bus: messages each queue holds in memory; a longer backlog (a "
                    "destination down for hours) waits in the store as message ids and is read "
                    "back as the queue drains, so memory stays bounded (Mirth's queue buffer).")
    dashboard: DashboardSettings = Field(
        default_factory=lambda: DashboardSettings.model_validate({}),
        description="Dashboard and management API.")
    alerts: AlertSettings = Field(default_factory=lambda: AlertSettings.model_validate({}),
                                  description="Alert rules.")
    retention: RetentionSettings = Field(
        default_factory=lambda: RetentionSettings.model_validate({}),
        description="Pruning of old messages.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return check_zone(value) if value else None

    @property
    def store(self) -> str:
        return self.store_url or f"sqlite:///{(self.data_dir / 'conduit.db').as_posix()}"


_ENV = {"CONDUIT_DATA_DIR": "data_dir", "CONDUIT_STORE_URL": "store_url",
        "CONDUIT_BUS_URL": "bus_url", "CONDUIT_LOG_LEVEL": "log_level",
        "CONDUIT_LOG_FORMAT": "log_format", "CONDUIT_ROLE": "role",
        "CONDUIT_WORKERS": "workers", "CONDUIT_QUEUE_BUFFER": "queue_buffer",
        "CONDUIT_TIMEZONE": "timezone"}


def load_settings(path: str | Path | None = None, **overrides: object) -> Settings:
    """Settings from ``path`` (or ``$CONDUIT_CONFIG``), then the environment, then overrides."""
    values: dict[str, object] = {}
    path = path or os.environ.get("CONDUIT_CONFIG")
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError([f"{path}: {exc}"]) from exc
        if not isinstance(loaded, dict):
            raise ConfigError([f"{path}: settings must be a mapping"])
        values.update({k.replace("-", "_"): v for k, v in loaded.items()})
    for env, key in _ENV.items():
        if os.environ.get(env):
            values[key] = os.environ[env]
    for env, value in os.environ.items():  # CONDUIT_DASHBOARD_PORT=9000 -> dashboard.port
        if env.startswith("CONDUIT_DASHBOARD_") and value:
            section = values.setdefault("dashboard", {})
            if isinstance(section, dict):
                section[env.removeprefix("CONDUIT_DASHBOARD_").lower()] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except Exception as exc:
        raise ConfigError([f"{path or 'settings'}: {exc}"]) from exc
