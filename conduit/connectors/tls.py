"""TLS settings shared by every listener and sender: server TLS, mutual TLS, custom CAs.

Certificates and keys are PEM files named in the channel (paths, usually through ``${VAR}``
interpolation so deployments keep them out of git). A listener with ``client_ca`` and
``require_client_cert: true`` does mutual TLS: a client without a certificate signed by that CA
is refused during the handshake, before a byte of the message is read.
"""

from __future__ import annotations

import ssl
from typing import Literal

from pydantic import Field

from conduit.connectors.base import StrictModel

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class ServerTls(StrictModel):
    """TLS for a listener (and, with ``client_ca``, mutual TLS)."""

    cert: str = Field(description="PEM file with the server certificate (and its chain).",
                      examples=["/etc/conduit/tls/server.pem"])
    key: str = Field(description="PEM file with the server's private key.",
                     examples=["/etc/conduit/tls/server.key"])
    key_password: str | None = Field(None, description="Password of an encrypted key.",
                                     examples=["${TLS_KEY_PASSWORD}"])
    client_ca: str | None = Field(
        None, description="PEM file with the CA(s) whose client certificates are trusted.",
        examples=["/etc/conduit/tls/clients-ca.pem"])
    require_client_cert: bool = Field(
        False, description="Mutual TLS: refuse clients without a certificate from client_ca.")
    min_version: Literal["1.2", "1.3"] = Field("1.2", description="Oldest TLS version accepted.")

    def context(self) -> ssl.SSLContext:
        """The server-side SSLContext (raises OSError/ssl.SSLError for unreadable files)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = _VERSIONS[self.min_version]
        ctx.load_cert_chain(self.cert, self.key, self.key_password)
        if self.client_ca:
            ctx.load_verify_locations(cafile=self.client_ca)
            ctx.verify_mode = (ssl.CERT_REQUIRED if self.require_client_cert
                               else ssl.CERT_OPTIONAL)
        elif self.require_client_cert:
            raise ValueError("require_client_cert needs client_ca")
        return ctx


class ClientTls(StrictModel):
    """TLS for a sender: which servers to trust, and the client certificate for mutual TLS."""

    ca: str | None = Field(
        None, description="PEM file with the CA(s) to trust instead of the system store.",
        examples=["/etc/conduit/tls/partner-ca.pem"])
    cert: str | None = Field(None, description="PEM file with our client certificate (mTLS).",
                             examples=["/etc/conduit/tls/client.pem"])
    key: str | None = Field(None, description="PEM file with the client certificate's key.",
                            examples=["/etc/conduit/tls/client.key"])
    key_password: str | None = Field(None, description="Password of an encrypted key.")
    verify: bool = Field(True, description="Check the server's certificate and host name. "
                                           "Turn off only for tests.")
    server_name: str | None = Field(
        None, description="Host name expected in the server certificate (default: the host).")
    min_version: Literal["1.2", "1.3"] = Field("1.2", description="Oldest TLS version used.")

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
        ctx.minimum_version = _VERSIONS[self.min_version]
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert:
            ctx.load_cert_chain(self.cert, self.key, self.key_password)
        elif self.key:
            raise ValueError("a client key needs its cert")
        return ctx
