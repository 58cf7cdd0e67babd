"""Inbound authentication for the HTTP-based listeners (REST, FHIR, SOAP): ``auth:`` on a source.

Two schemes, as hospital senders use them:

- ``basic``: users listed in the channel, each with an argon2 ``password_hash`` (made with
  ``conduit hash-password``) or a ``password`` taken from the environment (``${VAR}``).
  A verified argon2 check is remembered in memory (keyed by a salted SHA-256 of the credentials),
  so a sender that authenticates every request does not pay ~50 ms of argon2 each time.
- ``bearer``: static tokens, from the environment (``${VAR}``).

A request without valid credentials gets 401 with a ``WWW-Authenticate`` challenge, in the
listener's own error format (problem+json, OperationOutcome, SOAP fault). Credentials are never
logged; the user name is.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import os
from typing import Annotated, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import Field, model_validator

from conduit.connectors.base import StrictModel

_hasher = PasswordHasher()
_CACHE_LIMIT = 1024


class ListenerUser(StrictModel):
    """One user allowed to send to this listener with HTTP Basic authentication."""

    username: str = Field(min_length=1, pattern=r"^[^:]+$", description="The user name.",
                          examples=["lab-system"])
    password_hash: str | None = Field(
        None, pattern=r"^\$argon2",
        description="The password's argon2 hash, as `conduit hash-password` prints it (safe to "
                    "keep in the channel file). Give this or 'password'.",
        examples=["$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"])
    password: str | None = Field(
        None, min_length=1,
        description="The password itself, from the environment so it stays out of the file. "
                    "Give this or 'password_hash'.",
        examples=["${LAB_SENDER_PASSWORD}"])

    @model_validator(mode="after")
    def _one_secret(self) -> ListenerUser:
        if (self.password_hash is None) == (self.password is None):
            raise ValueError("give exactly one of 'password_hash' and 'password'")
        return self


class ListenerBasicAuth(StrictModel):
    """HTTP Basic authentication of senders against the users listed here."""

    type: Literal["basic"] = Field(description="HTTP Basic.", examples=["basic"])
    users: list[ListenerUser] = Field(
        min_length=1, description="Who may send.",
        examples=[[{"username": "lab-system", "password": "${LAB_SENDER_PASSWORD}"}]])
    realm: str = Field("conduit", pattern=r'^[^"\\]*$', examples=["lab-results"],
                       description="Realm named in the WWW-Authenticate challenge.")


class ListenerBearerAuth(StrictModel):
    """Bearer tokens (API keys) that senders put in ``Authorization: Bearer ...``."""

    type: Literal["bearer"] = Field(description="Static bearer tokens.", examples=["bearer"])
    tokens: list[Annotated[str, Field(min_length=16)]] = Field(
        min_length=1,
        description="Accepted tokens, each at least 16 characters; take them from the "
                    "environment (${VAR}) so they stay out of the file.",
        examples=[["${EHR_SENDER_TOKEN}"]])
    realm: str = Field("conduit", pattern=r'^[^"\\]*$', examples=["fhir-intake"],
                       description="Realm named in the WWW-Authenticate challenge.")


ListenerAuth = Annotated[ListenerBasicAuth | ListenerBearerAuth, Field(discriminator="type")]
AUTH_DESCRIPTION = ("Require senders to authenticate (HTTP Basic or bearer token); without valid "
                    "credentials they get 401 with a WWW-Authenticate challenge. Default: none.")
AUTH_EXAMPLES = [{"type": "basic", "users": [{"username": "lab-system",
                                              "password": "${LAB_SENDER_PASSWORD}"}]},
                 {"type": "bearer", "tokens": ["${EHR_SENDER_TOKEN}"]}]


def hash_password(password: str) -> str:
    """An argon2id hash for ``password_hash``."""
    return _hasher.hash(password)


class Rejection(Exception):
    """Not authenticated: ``challenge`` goes in WWW-Authenticate, ``reason`` in the body."""

    def __init__(self, challenge: str, reason: str) -> None:
        super().__init__(reason)
        self.challenge = challenge
        self.reason = reason


class ListenerAuthenticator:
    """Checks one request's ``Authorization`` header against a listener's ``auth:``."""

    def __init__(self, config: ListenerBasicAuth | ListenerBearerAuth) -> None:
        self.config = config
        self._salt = os.urandom(16)
        self._verified: set[bytes] = set()
        self._tokens = ([t.encode() for t in config.tokens]
                        if isinstance(config, ListenerBearerAuth) else [])
        self._users = ({u.username: u for u in config.users}
                       if isinstance(config, ListenerBasicAuth) else {})

    @property
    def scheme(self) -> str:
        return "Basic" if isinstance(self.config, ListenerBasicAuth) else "Bearer"

    def challenge(self, error: str | None = None) -> str:
        value = f'{self.scheme} realm="{self.config.realm}"'
        if self.scheme == "Basic":
            value += ', charset="UTF-8"'
        elif error:
            value += f', error="{error}"'
        return value

    async def check(self, authorization: str | None) -> str:
        """The authenticated user name (``token`` for bearer), or :class:`Rejection`. An argon2
        check runs in a thread (it takes tens of milliseconds), then is remembered."""
        if not authorization:
            raise Rejection(self.challenge(), "authentication required")
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != self.scheme.lower() or not credentials:
            raise Rejection(self.challenge(), f"use {self.scheme} authentication")
        if self.scheme == "Bearer":
            given = credentials.encode()
            if any(hmac.compare_digest(given, token) for token in self._tokens):
                return "token"
            raise Rejection(self.challenge("invalid_token"), "invalid token")
        try:
            username, _, password = base64.b64decode(credentials, validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Rejection(self.challenge(), "malformed Basic credentials") from None
        if await self._password_ok(username, password):
            return username
        raise Rejection(self.challenge(), "wrong user name or password")

    async def _password_ok(self, username: str, password: str) -> bool:
        user = self._users.get(username)
        if user is None:  # an unknown user costs the same as a known one
            await asyncio.to_thread(_verify, _dummy_hash(), password)
            return False
        if user.password is not None:
            return hmac.compare_digest(password.encode(), user.password.encode())
        key = hashlib.sha256(self._salt + username.encode() + b"\0" + password.encode()).digest()
        if key in self._verified:
            return True
        if not await asyncio.to_thread(_verify, user.password_hash or "", password):
            return False
        if len(self._verified) >= _CACHE_LIMIT:
            self._verified.clear()
        self._verified.add(key)
        return True


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("conduit timing equaliser")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
