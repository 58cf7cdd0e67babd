"""Independent peers for connector tests: a stdlib HTTP(S) server in a thread, and certificates
made at test time with trustme (a CA, server and client certificates)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Seen], Reply]


class HttpPeer:
    """A real HTTP(S) server (http.server) answering ``handler(request)``; records requests."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        peer = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in
                                                      self.headers.items()}, body)
                with peer.lock:
                    peer.requests.append(seen)
                reply = peer.handler(seen)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.server.daemon_threads = True
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if ssl_context else "http"
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "") -> str:
        host = "localhost" if self.scheme == "https" else "127.0.0.1"
        return f"{self.scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> HttpPeer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_reply(data: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, json.dumps(data).encode(), "application/json", dict(headers))


@dataclass
class Certs:
    """PEM files: a CA, a server certificate for localhost/127.0.0.1, a client certificate, and
    an unrelated CA's client certificate (which a mutual-TLS listener must refuse)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path
    authority: trustme.CA


def make_certs(folder: Path) -> Certs:
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("conduit-client@example.org")
    rogue = trustme.CA().issue_cert("intruder@example.org")
    paths = {}
    for name, blob in [("ca.pem", ca.cert_pem.bytes()),
                       ("server.pem", b"".join(b.bytes() for b in server.cert_chain_pems)),
                       ("server.key", server.private_key_pem.bytes()),
                       ("client.pem", b"".join(b.bytes() for b in client.cert_chain_pems)),
                       ("client.key", client.private_key_pem.bytes()),
                       ("rogue.pem", b"".join(b.bytes() for b in rogue.cert_chain_pems)),
                       ("rogue.key", rogue.private_key_pem.bytes())]:
        path = folder / name
        path.write_bytes(blob)
        paths[name] = path
    return Certs(paths["ca.pem"], paths["server.pem"], paths["server.key"], paths["client.pem"],
                 paths["client.key"], paths["rogue.pem"], paths["rogue.key"], ca)


def server_context(certs: Certs, require_client: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs.server_cert, certs.server_key)
    if require_client:
        ctx.load_verify_locations(cafile=certs.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
