"""Tables of the dashboard: users, login sessions and API tokens, and the access audit.
Created by the ``0002_web`` migration (``0005_user_mfa_sso``: TOTP and SSO columns), on the
store's metadata."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, String, Table, Text

from conduit.store.tables import Id, metadata

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("totp_secret", String(64)),  # 0005: base32 TOTP secret; null: no second factor
    Column("totp_step", BigInteger),  # the last TOTP time step accepted (a code works once)
    Column("sso_subject", String(300)),  # "<issuer>#<sub>" for an OpenID Connect user
    Index("ix_users_sso_subject", "sso_subject", unique=True),
)

auth_tokens = Table(
    "auth_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("username", String(100), nullable=False),
    Column("kind", String(16), nullable=False),  # session | api | mfa (password done, code due)
    Column("csrf", String(64)),
    Column("label", String(200)),
    Column("remote", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Index("ix_auth_tokens_username", "username"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("username", String(100)),
    Column("action", String(40), nullable=False),
    Column("message_id", Id),  # no foreign key: the audit outlives pruned messages
    Column("remote", String(200)),
    Column("detail", Text),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_message_id", "message_id"),
)
