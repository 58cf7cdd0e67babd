"""Engine settings: built once at start from a settings file and the environment, then passed in.

Precedence: environment (``CONDUIT_*``) over the settings file (``--config``, else
``CONDUIT_CONFIG``, else the first ``conduit.yaml`` found from the working directory upward) over
the embedded defaults (SQLite store and in-process bus under ``CONDUIT_DATA_DIR`` or ``./data``).
A relative ``data_dir`` in a found ``conduit.yaml`` is relative to that file's folder, so every
command run anywhere below it opens the same store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from conduit.bus.embedded import CAPACITY
from conduit.core.duration import Duration
from conduit.core.errors import ConfigError
from conduit.core.timezone import check_zone
from conduit.store.retention import RetentionSettings

Role = Literal["viewer", "operator", "admin"]


class OidcSettings(BaseModel):
    """Single sign-on through an OpenID Connect provider (authorization code + PKCE).

    The role comes from one claim of the ID token (or userinfo): its value, or any of its values
    when it is a list, is looked up in ``role_map`` and the highest role found wins; a user whose
    claims map to no role gets ``default_role``, and is refused when that is unset."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(description="The provider's issuer URL (its discovery document is "
                                    "<issuer>/.well-known/openid-configuration).")
    client_id: str
    client_secret: str | None = Field(None, description="Confidential client's secret.")
    scopes: list[str] = Field(["openid", "profile", "email"],
                              description="Scopes asked for; openid is always included.")
    name: str = Field("SSO", description="Shown on the login page: 'Sign in with <name>'.")
    role_claim: str = Field("roles", description="The claim that carries the role (a string "
                                                 "or a list of strings, e.g. groups).")
    role_map: dict[str, Role] = Field(
        default_factory=dict, description="Claim value -> viewer | operator | admin.")
    default_role: Role | None = Field(
        None, description="Role of a user whose claims map to none; unset: refuse them.")
    username_claim: str = Field(
        "preferred_username", description="The claim that names the user in Conduit "
                                          "(falls back to email, then sub).")
    redirect_uri: str | None = Field(
        None, description="The callback URL registered at the provider; default: "
                          "<the URL the dashboard is reached at>/login/oidc/callback.")


class DashboardSettings(BaseModel):
    """The dashboard and management API served by the engine (uvicorn)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(
        None, description="Serve the dashboard and management API; default: yes, except in a "
                          "`--role workers` process (so listeners and workers share a host "
                          "without both binding the port; set true and another port to scrape "
                          "a worker's /metrics).")
    metrics_loopback: bool = Field(
        True, description="Serve /metrics without login to clients on this machine (127.0.0.1, "
                          "::1), e.g. a Prometheus or node agent beside the engine; turn off "
                          "when a reverse proxy on this machine forwards outside requests.")
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
    local_login: bool = Field(
        True, description="Offer the user name + password form; false: single sign-on only.")
    oidc: OidcSettings | None = Field(None, description="OpenID Connect single sign-on.")
    mfa_required_roles: list[Role] = Field(
        default_factory=list, description="Local users of these roles must give a TOTP code "
                                          "after their password (enrolled with `conduit users "
                                          "mfa NAME`); without one they cannot log in.")

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
    kind: Literal["error-rate", "queue-depth", "idle", "breaker-open",
                  "destination-blocked"] = Field(
        description="error-rate: errors/(errors+sent) over `window` above `threshold`; "
                    "queue-depth: a destination queue above `threshold` for `for`; "
                    "idle: nothing received for `for`; breaker-open: a breaker is open; "
                    "destination-blocked: an ordered destination holds its queue on a message "
                    "that keeps failing (for `for`).")
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


class SweepSettings(BaseModel):
    """The sweeper (``engine.jobs.sweeper``): committed work never published is put back."""

    model_config = ConfigDict(extra="forbid")

    interval: Duration = Field(60, description="How often the sweeper looks (0 = never).",
                               examples=["1m"])
    grace: Duration = Field(
        300, examples=["5m"],
        description="Work untouched and never attempted for this long is taken as never "
                    "published and put back on the bus; longer than a send takes.")
    batch: int = Field(1000, ge=1, description="Messages per channel and kind per pass.")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(Path("data"), description="Where the embedded store and files live.")
    store_url: str | None = Field(
        None, description="SQLAlchemy URL of the store; default sqlite:///<data_dir>/conduit.db.",
        examples=["postgresql://conduit@db:5432/conduit"])
    bus_url: str | None = Field(
        None, description="amqp://user:pass@host:5672/vhost for RabbitMQ (quorum queues; "
                          "?queue_type=classic for classic); default in-process.")
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
    listen_host: str | None = Field(
        None, examples=["0.0.0.0"],
        description="Address every channel source listens on, whatever its file says "
                    "(CONDUIT_LISTEN_HOST; in a container 0.0.0.0, so that published ports "
                    "reach the listeners). Default: each channel's own `source.host`.")
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
    sweep: SweepSettings = Field(
        default_factory=lambda: SweepSettings.model_validate({}),
        description="Putting back committed work a crash left unpublished (RabbitMQ).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return check_zone(value) if value else None

    @property
    def serves_dashboard(self) -> bool:
        """Whether this process serves the dashboard (see ``dashboard.enabled``)."""
        enabled = self.dashboard.enabled
        return self.role != "workers" if enabled is None else enabled

    @property
    def store(self) -> str:
        return self.store_url or f"sqlite:///{(self.data_dir / 'conduit.db').as_posix()}"


_ENV = {"CONDUIT_DATA_DIR": "data_dir", "CONDUIT_STORE_URL": "store_url",
        "CONDUIT_BUS_URL": "bus_url", "CONDUIT_LOG_LEVEL": "log_level",
        "CONDUIT_LOG_FORMAT": "log_format", "CONDUIT_ROLE": "role",
        "CONDUIT_WORKERS": "workers", "CONDUIT_QUEUE_BUFFER": "queue_buffer",
        "CONDUIT_TIMEZONE": "timezone", "CONDUIT_LISTEN_HOST": "listen_host"}


CONFIG_NAME = "conduit.yaml"


def find_config(start: Path | None = None) -> Path | None:
    """The first ``conduit.yaml`` in ``start`` (default: the working directory) or above."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / CONFIG_NAME).is_file():
            return candidate / CONFIG_NAME
    return None


def settings_source(path: str | Path | None = None) -> tuple[Path | None, bool]:
    """The settings file to read and whether it was found upward (not given): ``path``, else
    ``$CONDUIT_CONFIG``, else the nearest ``conduit.yaml``."""
    given = path or os.environ.get("CONDUIT_CONFIG")
    if given:
        return Path(given), False
    found = find_config()
    return found, found is not None


def load_settings(path: str | Path | None = None, **overrides: object) -> Settings:
    """Settings from ``path`` (or ``$CONDUIT_CONFIG``, or the nearest ``conduit.yaml``), then
    the environment, then overrides."""
    values: dict[str, object] = {}
    path, found = settings_source(path)
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError([f"{path}: {exc}"]) from exc
        if not isinstance(loaded, dict):
            raise ConfigError([f"{path}: settings must be a mapping"])
        values.update({k.replace("-", "_"): v for k, v in loaded.items()})
        if found and not Path(str(values.get("data_dir") or "data")).is_absolute():
            values["data_dir"] = path.parent / str(values.get("data_dir") or "data")
    for env, key in _ENV.items():
        if os.environ.get(env):
            values[key] = os.environ[env]
    for env, value in os.environ.items():  # CONDUIT_DASHBOARD_PORT=9000 -> dashboard.port
        if env.startswith("CONDUIT_DASHBOARD_") and value:
            section = values.setdefault("dashboard", {})
            if isinstance(section, dict) and env == "CONDUIT_DASHBOARD_OIDC_CLIENT_SECRET":
                oidc = section.get("oidc")  # the secret kept out of the settings file
                if isinstance(oidc, dict):
                    oidc["client_secret"] = value
            elif isinstance(section, dict):
                section[env.removeprefix("CONDUIT_DASHBOARD_").lower()] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except Exception as exc:
        raise ConfigError([f"{path or 'settings'}: {exc}"]) from exc
