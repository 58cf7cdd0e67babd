"""Users, passwords, login sessions, API tokens and roles.

- Passwords are hashed with argon2id (argon2-cffi); an unknown user costs a hash too, so timing
  does not tell which names exist.
- A login creates a session: a random token in an HttpOnly, SameSite=Strict cookie (Secure under
  TLS) whose SHA-256 is kept in ``auth_tokens`` with a CSRF token and an expiry, so a logout or a
  deleted user ends it at once, across engine processes sharing the store.
- API clients use ``Authorization: Bearer <token>`` with a token from ``conduit users token``;
  browsers never send those on their own, so they need no CSRF token.
- Roles are ranked: viewer (counts and states, no message bodies) < operator (bodies, reprocess,
  start/stop) < admin (users, deployment, audit).
- A local user may have a TOTP second factor (``totp``): after the password, the login is only a
  pending ``mfa`` token (never a session) until the code is given. A user made by single sign-on
  (``sso_subject``) has no usable password; the provider vouches for them.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select, update

from conduit.ops import totp
from conduit.ops.tables import auth_tokens, users
from conduit.store import eventlog

log = structlog.get_logger(__name__)

ROLES = ("viewer", "operator", "admin")
RANK = {role: index for index, role in enumerate(ROLES)}
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a real password")
CACHE_SECONDS = 5.0
NO_PASSWORD = "!sso"  # the password hash of a single sign-on user: no password matches it
MFA_MINUTES = 5  # time to give the TOTP code after the password


def now() -> datetime:
    return datetime.now(UTC)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user with a role, through a session (with CSRF token) or an API token."""

    name: str
    role: str
    kind: str  # session | api
    csrf: str | None = None
    token_hash: str | None = None

    def can(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


class UserError(ValueError):
    """A user operation that cannot be done (unknown user, bad role, weak password)."""


@dataclass(frozen=True, slots=True)
class Account:
    """A user whose password was right: whether a TOTP code is still due."""

    name: str
    role: str
    totp: bool


class Users:
    """Users and their tokens in the store's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    # -- users -----------------------------------------------------------------------------

    def add(self, name: str, password: str, role: str, *, by: str | None = None) -> None:
        """A new user; ``by``: the user who added them (event log; None: on the host)."""
        _check(name, password, role)
        with self.engine.begin() as connection:
            if connection.execute(select(users.c.id).where(users.c.name == name)).first():
                raise UserError(f"user {name!r} exists already")
            connection.execute(users.insert().values(
                name=name, password_hash=_hasher.hash(password), role=role, disabled=False,
                created_at=now()))
        self._note("user.added", f"user {name} added as {role}", by)

    def update(self, name: str, *, password: str | None = None, role: str | None = None,
               disabled: bool | None = None, by: str | None = None) -> None:
        values: dict[str, object] = {}
        if password is not None:
            _check(name, password, role or "viewer")
            values["password_hash"] = _hasher.hash(password)
        if role is not None:
            if role not in RANK:
                raise UserError(f"role must be one of {', '.join(ROLES)}")
            values["role"] = role
        if disabled is not None:
            values["disabled"] = disabled
        with self.engine.begin() as connection:
            if not connection.execute(update(users).where(users.c.name == name)
                                      .values(**values)).rowcount:
                raise UserError(f"no user {name!r}")
            if password is not None or disabled:  # sessions and pending second steps end
                connection.execute(delete(auth_tokens).where(auth_tokens.c.username == name,
                                                             auth_tokens.c.kind != "api"))
        self._forget()
        changes = (["password changed"] if password is not None else []) + (
            [f"role {role}"] if role is not None else []) + (
            [("disabled" if disabled else "enabled")] if disabled is not None else [])
        self._note("user.changed", f"user {name}: {', '.join(changes) or 'nothing changed'}", by)

    def remove(self, name: str, *, by: str | None = None) -> None:
        with self.engine.begin() as connection:
            if not connection.execute(delete(users).where(users.c.name == name)).rowcount:
                raise UserError(f"no user {name!r}")
            connection.execute(delete(auth_tokens).where(auth_tokens.c.username == name))
        self._forget()
        self._note("user.removed", f"user {name} removed", by)

    def _note(self, kind: str, text: str, by: str | None) -> None:
        """An event in the event log (done already: a failed write is logged, not raised)."""
        try:
            eventlog.record(self.engine, kind, text if by else f"{text} (on the host)",
                            user=by)
        except Exception as exc:
            log.warning("could not record an event", kind=kind, error=type(exc).__name__)

    def list(self) -> list[dict[str, object]]:
        with self.engine.connect() as connection:
            return [{"name": r.name, "role": r.role, "disabled": r.disabled,
                     "created_at": r.created_at, "totp": r.totp_secret is not None,
                     "sso": r.sso_subject is not None}
                    for r in connection.execute(select(users).order_by(users.c.name))]

    def exists(self, name: str) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(select(users.c.id).where(users.c.name == name)).first() \
                is not None

    def verify(self, name: str, password: str) -> Account | None:
        """The account when the password is right and the user enabled, else None."""
        with self.engine.connect() as connection:
            row = connection.execute(select(users).where(users.c.name == name)).first()
        try:
            _hasher.verify(row.password_hash if row else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row.disabled:
            return None
        if _hasher.check_needs_rehash(row.password_hash):
            self.update(name, password=password)
        return Account(row.name, row.role, row.totp_secret is not None)

    # -- second factor ---------------------------------------------------------------------

    def enrol_totp(self, name: str, *, replace: bool = False) -> str:
        """Give ``name`` a new TOTP secret (returned once); refused when they have one already,
        unless ``replace``. Ends their sessions, as a password change does."""
        secret = totp.new_secret()
        with self.engine.begin() as connection:
            row = connection.execute(select(users.c.totp_secret, users.c.sso_subject)
                                     .where(users.c.name == name)).first()
            if row is None:
                raise UserError(f"no user {name!r}")
            if row.sso_subject is not None:
                raise UserError(f"{name!r} logs in through single sign-on: their second "
                                "factor is the identity provider's")
            if row.totp_secret is not None and not replace:
                raise UserError(f"{name!r} has a TOTP secret already: --reset removes it, "
                                "--replace makes a new one")
            connection.execute(update(users).where(users.c.name == name)
                               .values(totp_secret=secret, totp_step=None))
            connection.execute(delete(auth_tokens).where(auth_tokens.c.username == name,
                                                         auth_tokens.c.kind != "api"))
        self._forget()
        return secret

    def set_totp(self, name: str, secret: str, step: int) -> None:
        """Enrol ``name`` with a ``secret`` they have proved (a code of ``step``, now used up);
        only when they have none: replacing one is an administrator's ``enrol_totp``."""
        with self.engine.begin() as connection:
            done = connection.execute(
                update(users).where(users.c.name == name, users.c.totp_secret.is_(None),
                                    users.c.sso_subject.is_(None))
                .values(totp_secret=secret, totp_step=step)).rowcount
        if not done:
            raise UserError(f"{name!r} has a second factor already, or signs in through "
                            "single sign-on")
        self._forget()

    def reset_totp(self, name: str) -> None:
        """Remove ``name``'s second factor (a lost phone); ends their sessions."""
        with self.engine.begin() as connection:
            if not connection.execute(update(users).where(users.c.name == name)
                                      .values(totp_secret=None, totp_step=None)).rowcount:
                raise UserError(f"no user {name!r}")
            connection.execute(delete(auth_tokens).where(auth_tokens.c.username == name,
                                                         auth_tokens.c.kind != "api"))
        self._forget()

    def has_totp(self, name: str) -> bool:
        with self.engine.connect() as connection:
            secret = connection.execute(select(users.c.totp_secret)
                                        .where(users.c.name == name)).scalar()
        return secret is not None

    def check_totp(self, name: str, code: str) -> bool:
        """Whether ``code`` is ``name``'s current TOTP code, not used before (it is used now:
        the step is recorded in the same statement that checks it was not, so two requests
        racing with one code cannot both pass)."""
        with self.engine.connect() as connection:
            row = connection.execute(select(users.c.totp_secret, users.c.totp_step)
                                     .where(users.c.name == name)).first()
        if row is None or row.totp_secret is None:
            return False
        step = totp.matching_step(row.totp_secret, code, row.totp_step)
        if step is None:
            return False
        with self.engine.begin() as connection:
            return bool(connection.execute(
                update(users).where(users.c.name == name,
                                    (users.c.totp_step.is_(None)) | (users.c.totp_step < step))
                .values(totp_step=step)).rowcount)

    def open_pending(self, name: str, remote: str | None) -> str:
        """A token standing for 'password right, code due' (MFA_MINUTES); never a session."""
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as connection:
            connection.execute(delete(auth_tokens).where(auth_tokens.c.expires_at < now()))
            connection.execute(auth_tokens.insert().values(
                token_hash=digest(token), username=name, kind="mfa", remote=remote,
                created_at=now(), expires_at=now() + timedelta(minutes=MFA_MINUTES)))
        return token

    def pending(self, token: str) -> str | None:
        """The user a pending second step belongs to, while it lasts and the user is enabled."""
        query = (select(auth_tokens.c.expires_at, users.c.name, users.c.disabled)
                 .join(users, users.c.name == auth_tokens.c.username)
                 .where(auth_tokens.c.token_hash == digest(token), auth_tokens.c.kind == "mfa"))
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None or row.disabled or _aware(row.expires_at) <= now():
            return None
        return str(row.name)

    def close_pending(self, token: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(auth_tokens).where(auth_tokens.c.token_hash == digest(token),
                                                         auth_tokens.c.kind == "mfa"))

    # -- single sign-on --------------------------------------------------------------------

    def sso_login(self, subject: str, name: str, role: str) -> str:
        """The user an OpenID Connect login stands for (found by ``subject``, made on first
        login with ``name``), with the ``role`` the provider's claims give now; their name."""
        if role not in RANK:
            raise UserError(f"role must be one of {', '.join(ROLES)}")
        with self.engine.begin() as connection:
            row = connection.execute(select(users.c.name, users.c.disabled)
                                     .where(users.c.sso_subject == subject)).first()
            if row is not None:
                if row.disabled:
                    raise UserError(f"user {row.name!r} is disabled in Conduit")
                connection.execute(update(users).where(users.c.sso_subject == subject)
                                   .values(role=role))
                self._forget()
                return str(row.name)
            _check_name(name)
            if connection.execute(select(users.c.id).where(users.c.name == name)).first():
                raise UserError(f"the name {name!r} belongs to another Conduit user (a local "
                                "one, or another provider's): an administrator must rename or "
                                "remove that user first")
            connection.execute(users.insert().values(
                name=name, password_hash=NO_PASSWORD, role=role, disabled=False,
                created_at=now(), sso_subject=subject))
        return name

    # -- tokens ----------------------------------------------------------------------------

    def open_session(self, name: str, remote: str | None, hours: float) -> tuple[str, str]:
        """A new login session for ``name``: (cookie token, CSRF token)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self.engine.begin() as connection:
            connection.execute(delete(auth_tokens).where(auth_tokens.c.expires_at < now()))
            connection.execute(auth_tokens.insert().values(
                token_hash=digest(token), username=name, kind="session", csrf=csrf,
                remote=remote, created_at=now(), expires_at=now() + timedelta(hours=hours)))
        return token, csrf

    def create_api_token(self, name: str, label: str | None = None,
                         days: float | None = None) -> str:
        with self.engine.begin() as connection:
            if not connection.execute(select(users.c.id).where(users.c.name == name)).first():
                raise UserError(f"no user {name!r}")
            token = "cdt_" + secrets.token_urlsafe(32)
            connection.execute(auth_tokens.insert().values(
                token_hash=digest(token), username=name, kind="api", label=label,
                created_at=now(),
                expires_at=now() + timedelta(days=days) if days else None))
        return token

    def close(self, token_hash: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(auth_tokens).where(auth_tokens.c.token_hash == token_hash))
        self._forget()

    def lookup(self, token: str) -> Principal | None:
        """The principal a token stands for (cached a few seconds), or None."""
        hashed = digest(token)
        clock = time.monotonic()
        with self._lock:
            cached = self._cache.get(hashed)
        if cached and clock - cached[0] < CACHE_SECONDS:
            return cached[1]
        query = (select(auth_tokens.c.kind, auth_tokens.c.csrf, auth_tokens.c.expires_at,
                        users.c.name, users.c.role, users.c.disabled)
                 .join(users, users.c.name == auth_tokens.c.username)
                 .where(auth_tokens.c.token_hash == hashed,
                        auth_tokens.c.kind.in_(("session", "api"))))
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        principal = None
        if row is not None and not row.disabled and (
                row.expires_at is None or _aware(row.expires_at) > now()):
            principal = Principal(row.name, row.role, row.kind, row.csrf, hashed)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[hashed] = (clock, principal)
        return principal

    def _forget(self) -> None:
        with self._lock:
            self._cache.clear()


class LoginLimiter:
    """At most ``attempts`` failed logins per ``window`` seconds, per address and per name."""

    def __init__(self, attempts: int, window: float) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
        """Seconds until another attempt is allowed for these keys (0: allowed now)."""
        clock = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                failures = self._failures.get(key)
                if not failures:
                    continue
                while failures and clock - failures[0] > self.window:
                    failures.popleft()
                if len(failures) >= self.attempts:
                    wait = max(wait, self.window - (clock - failures[0]))
        return wait

    def failed(self, *keys: str) -> None:
        clock = time.monotonic()
        with self._lock:
            if len(self._failures) > 100_000:
                self._failures.clear()
            for key in keys:
                self._failures.setdefault(key, deque(maxlen=self.attempts * 2)).append(clock)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def _check(name: str, password: str, role: str) -> None:
    _check_name(name)
    if role not in RANK:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise UserError("a password has at least 8 characters")


def _check_name(name: str) -> None:
    if not name or len(name) > 100 or not name.replace("-", "").replace("_", "") \
            .replace(".", "").replace("@", "").isalnum():
        raise UserError("a user name is letters, digits, '-', '_', '.' or '@' (at most 100)")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
