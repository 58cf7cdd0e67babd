"""Outbound HTTP authentication: basic, bearer, OAuth2 client credentials, SMART backend services.

OAuth2 tokens are fetched from the token endpoint on first use, cached until shortly before they
expire (``expires_in`` minus a margin) and fetched again then, or at once when the resource
server answers 401 (the caller calls :meth:`Authenticator.invalidate` and retries once). One
fetch at a time: concurrent sends wait for the same token instead of each asking for one.

On a PostgreSQL store the token is the cluster's (``ConnectorContext.tokens``): one process
fetches it, under an advisory lock, and stores it encrypted (Fernet, with a key derived from
the client's secret or private key, so the database alone does not reveal it); the others read
it until it nears its expiry. A token the server refused (401) is fetched anew, never reused.
Tokens are never logged.

SMART Backend Services (``client_assertion: private_key_jwt``) signs a short-lived JWT with the
client's private key (RS384 or ES384) instead of sending a secret, as the SMART App Launch
specification asks.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from typing import Annotated, Any, Literal

import httpx
import orjson
from pydantic import Field

from conduit.connectors.base import StrictModel, TokenCache
from conduit.core.errors import PermanentError, RetryableError

EXPIRY_MARGIN = 30.0
"""Seconds before a token's expiry at which it is fetched again."""


class BasicAuth(StrictModel):
    """HTTP Basic authentication."""

    type: Literal["basic"]
    username: str = Field(description="User name.", examples=["conduit"])
    password: str = Field(description="Password; use ${VAR} to keep it out of the file.",
                          examples=["${PARTNER_PASSWORD}"])


class BearerAuth(StrictModel):
    """A fixed bearer token (an API key)."""

    type: Literal["bearer"]
    token: str = Field(description="The token; use ${VAR}.", examples=["${PARTNER_TOKEN}"])


class OAuth2Auth(StrictModel):
    """OAuth2 client credentials, also SMART Backend Services (``private_key_jwt``)."""

    type: Literal["oauth2"]
    token_url: str = Field(description="The token endpoint.",
                           examples=["https://auth.example.org/oauth2/token"])
    client_id: str = Field(description="Our client id.", examples=["conduit"])
    client_secret: str | None = Field(None, description="Client secret (not for private_key_jwt).",
                                      examples=["${OAUTH_CLIENT_SECRET}"])
    scope: str | None = Field(None, description="Scopes asked for, space separated.",
                              examples=["system/Patient.write system/Observation.write"])
    audience: str | None = Field(None, description="'audience' parameter some servers need.")
    client_assertion: Literal["client_secret_basic", "client_secret_post",
                              "private_key_jwt"] = Field(
        "client_secret_basic",
        description="How the client proves itself: the secret in a Basic header, in the form, "
                    "or a JWT signed with private_key (SMART Backend Services).")
    private_key: str | None = Field(None, description="PEM file with the signing key "
                                                      "(private_key_jwt).",
                                    examples=["/etc/conduit/smart/private.pem"])
    key_id: str | None = Field(None, description="'kid' of the signing key in our JWKS.")
    algorithm: Literal["RS384", "ES384"] = Field("RS384", description="JWT signing algorithm.")


Auth = Annotated[BasicAuth | BearerAuth | OAuth2Auth, Field(discriminator="type")]


class Authenticator:
    """Headers for one destination's requests; keeps the OAuth2 token."""

    def __init__(self, config: BasicAuth | BearerAuth | OAuth2Auth | None, *,
                 tokens: TokenCache | None = None) -> None:
        self.config = config
        self._tokens = tokens
        self._token: str | None = None
        #: The token the resource server refused (401): never taken from the cluster again.
        self._stale: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many tokens were fetched (visible to tests and metrics)."""

    @property
    def refreshable(self) -> bool:
        return isinstance(self.config, OAuth2Auth)

    def invalidate(self) -> None:
        self._stale, self._token = self._token, None

    async def apply(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        config = self.config
        if config is None:
            return
        if isinstance(config, BasicAuth):
            pair = f"{config.username}:{config.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif isinstance(config, BearerAuth):
            headers["Authorization"] = f"Bearer {config.token}"
        else:
            headers["Authorization"] = f"Bearer {await self._oauth_token(client, config)}"

    async def _oauth_token(self, client: httpx.AsyncClient, config: OAuth2Auth) -> str:
        async with self._lock:
            if self._token is not None and time.monotonic() < self._expires:
                return self._token
            if self._tokens is None:
                token, lifetime = await self._fetch(client, config)
            else:
                key = "\x1f".join((config.token_url, config.client_id, config.scope or "",
                                    config.audience or ""))
                token, lifetime = await self._tokens.token(
                    key, _secret(config), lambda: self._fetch(client, config),
                    margin=EXPIRY_MARGIN, stale=self._stale)
            self._token = token
            self._expires = time.monotonic() + max(lifetime - EXPIRY_MARGIN, lifetime / 2)
            return token

    async def _fetch(self, client: httpx.AsyncClient,
                     config: OAuth2Auth) -> tuple[str, float]:
        """A new token from the token endpoint, and its lifetime in seconds."""
        form: dict[str, str] = {"grant_type": "client_credentials"}
        if config.scope:
            form["scope"] = config.scope
        if config.audience:
            form["audience"] = config.audience
        auth: httpx.Auth | httpx._client.UseClientDefault = httpx.USE_CLIENT_DEFAULT
        if config.client_assertion == "client_secret_basic":
            auth = httpx.BasicAuth(config.client_id, config.client_secret or "")
        elif config.client_assertion == "client_secret_post":
            form["client_id"] = config.client_id
            form["client_secret"] = config.client_secret or ""
        else:
            form["client_assertion_type"] = (
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            form["client_assertion"] = client_assertion(config)
        try:
            response = await client.post(config.token_url, data=form, auth=auth,
                                          headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise RetryableError(f"token endpoint: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise RetryableError(f"token endpoint answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"token endpoint refused the client: "
                                 f"{response.status_code}", response.content)
        try:
            data = response.json()
            token = str(data["access_token"])
        except Exception as exc:
            raise RetryableError("token endpoint answered without an access_token") from exc
        lifetime = float(data.get("expires_in") or 300)
        self.fetches += 1
        return token, lifetime


def _secret(config: OAuth2Auth) -> bytes:
    """What only this client's configuration knows: keys the encryption of a shared token."""
    if config.client_assertion == "private_key_jwt" and config.private_key:
        with open(config.private_key, "rb") as handle:
            return handle.read()
    return (config.client_secret or "").encode() + b"\x00" + config.client_id.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def client_assertion(config: OAuth2Auth, now: float | None = None) -> str:
    """A signed JWT proving the client (SMART Backend Services, RFC 7523), valid 5 minutes."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    if not config.private_key:
        raise PermanentError("private_key_jwt needs private_key")
    with open(config.private_key, "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    issued = int(now if now is not None else time.time())
    header: dict[str, Any] = {"alg": config.algorithm, "typ": "JWT"}
    if config.key_id:
        header["kid"] = config.key_id
    claims = {"iss": config.client_id, "sub": config.client_id, "aud": config.token_url,
              "exp": issued + 300, "iat": issued, "jti": uuid.uuid4().hex}
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}".encode()
    if config.algorithm == "RS384":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise PermanentError("RS384 needs an RSA private key")
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA384())
    else:
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PermanentError("ES384 needs an EC private key")
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA384())))
        signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    return f"{signing_input.decode()}.{_b64(signature)}"
