"""REST over HTTP(S): a listener source (served by uvicorn) and an httpx destination.

Source: one path, the methods and content types it takes (JSON, XML, text, HL7 v2), a size
limit. A request is answered ``202 Accepted`` with the message id only once the message is
committed and queued (or, with ``ack: after-delivery``, with the receiver's response). Bad input
is answered 4xx with an RFC 9457 ``application/problem+json`` body and kept in the store as
ERROR; an engine that cannot take the message answers 503 with ``Retry-After`` so the sender
keeps it.

Destination: method, URL, headers and body are Jinja2 templates; auth basic, bearer or OAuth2
client credentials (:mod:`conduit.connectors.auth`); TLS with a custom CA and client
certificate. 5xx, 429 and transport failures are retryable, other 4xx permanent; the response
body is what ``send`` returns, so the store keeps it.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
import orjson
import structlog
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from conduit.connectors.asgi import AsgiListener, AsgiSource, HttpListenerConfig
from conduit.connectors.auth import Auth, Authenticator
from conduit.connectors.base import (
    ConnectorContext,
    DestinationConfig,
)
from conduit.connectors.listener_auth import (
    AUTH_DESCRIPTION,
    AUTH_EXAMPLES,
    ListenerAuth,
    ListenerAuthenticator,
)
from conduit.connectors.render import RenderContext
from conduit.connectors.tls import ClientTls, ServerTls
from conduit.core.duration import Duration
from conduit.core.errors import MessageError, PermanentError, RetryableError
from conduit.core.payload import parse_json, parse_xml
from conduit.core.protocols import Outbound, Receipt
from conduit.core.reason import Reason, value
from conduit.core.registry import destination, source
from conduit.transforms.template import TemplateText, compile_template

log = structlog.get_logger(__name__)

HL7_TYPES = ("application/hl7-v2", "x-application/hl7-v2+er7", "application/edi-hl7")
DEFAULT_TYPES = ["application/json", "application/fhir+json", "application/xml", "text/xml",
                 "text/plain", *HL7_TYPES]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class HttpSourceConfig(HttpListenerConfig):
    """Listen for messages over HTTP(S) on one path."""


    type: Literal["http"]
    host: str = Field("0.0.0.0", description="Address to listen on.", examples=["127.0.0.1"])
    port: int = Field(ge=0, le=65535, description="TCP port (0 = any free port).",
                      examples=[8080])
    path: str = Field("/", pattern=r"^/", description="The path messages are sent to.",
                      examples=["/adt", "/api/v1/orders"])
    methods: list[Literal["POST", "PUT", "PATCH"]] = Field(
        ["POST"], min_length=1, description="Methods that carry a message.",
        examples=[["POST", "PUT"]])
    content_types: list[str] = Field(
        DEFAULT_TYPES, min_length=1,
        description="Media types accepted (others get 415). JSON types are checked to be JSON "
                    "and XML types to be well-formed XML before the message is accepted.",
        examples=[["application/json"], ["application/hl7-v2", "text/plain"]])
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1,
                                description="Largest body accepted; larger gets 413.",
                                examples=[1048576])
    response_content_type: str | None = Field(
        None, description="Content type of the receiver's response passed back with "
                          "ack: after-delivery (default: guessed from the response).",
        examples=["application/json"])
    tls: ServerTls | None = Field(None, description="Serve HTTPS (and mutual TLS).")
    auth: ListenerAuth | None = Field(None, description=AUTH_DESCRIPTION, examples=AUTH_EXAMPLES)


class HttpDestinationConfig(DestinationConfig):
    """Send each message as an HTTP request."""

    type: Literal["http"]
    url: TemplateText = Field(
        description="Target URL, a Jinja2 template (msg, body, content, id are in scope).",
        examples=["https://api.example.org/patients/{{ body.id }}",
                  "https://lab.example.org/orders?mrn={{ msg['PID-3.1'] }}"])
    method: Method = Field("POST", description="HTTP method.")
    headers: dict[str, TemplateText] = Field(
        default_factory=dict, description="Extra headers; values are templates.",
        examples=[{"X-Correlation-Id": "{{ id }}"}])
    body: TemplateText | None = Field(
        None, description="Request body template (default: the message content as it is).",
        examples=['{"mrn": "{{ msg[\'PID-3.1\'] }}"}'])
    content_type: str | None = Field(
        None, description="Content-Type (default: guessed: JSON, XML, HL7 v2 or text).",
        examples=["application/fhir+json"])
    auth: Auth | None = Field(None, description="How to authenticate.")
    timeout: Duration = Field(30.0, description="Longest wait for the whole response.",
                              examples=["30s"])
    connect_timeout: Duration = Field(10.0, description="Longest wait for a connection.")
    tls: ClientTls | None = Field(None, description="Custom CA, client certificate (mTLS).")


# --- shared helpers ------------------------------------------------------------------------


def guess_content_type(body: bytes) -> str:
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:5]
    if head[:1] in (b"{", b"["):
        return "application/json"
    if head[:1] == b"<":
        return "application/xml"
    if head[:3] in (b"MSH", b"FHS", b"BHS"):
        return "x-application/hl7-v2+er7"
    return "text/plain; charset=utf-8"


def problem(status: int, title: str, detail: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """An RFC 9457 problem details response."""
    content: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        content["detail"] = detail
    content.update(extra)
    return Response(orjson.dumps(content), status, headers=headers,
                    media_type="application/problem+json")


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def check_syntax(media: str, body: bytes) -> None:
    """JSON types must be JSON, XML types well-formed XML (MessageError otherwise)."""
    if media.endswith("json"):
        parse_json(body)
    elif media.endswith("xml"):
        parse_xml(body)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def receipt_response(receipt: Receipt, after_delivery: bool,
                     response_type: str | None) -> Response:
    """How an Inbound receipt is answered over HTTP."""
    id_header = {"X-Conduit-Message-Id": str(receipt.message_id)} \
        if receipt.message_id is not None else {}
    if receipt.accepted:
        if after_delivery and receipt.response:
            return Response(receipt.response, 200, headers=id_header,
                            media_type=response_type or guess_content_type(receipt.response))
        status = "filtered" if receipt.filtered else ("delivered" if after_delivery
                                                      else "accepted")
        return Response(orjson.dumps({"id": receipt.message_id, "status": status}),
                        200 if after_delivery else 202, headers=id_header,
                        media_type="application/json")
    if receipt.permanent:
        return problem(400, "Message refused", receipt.error, headers=id_header,
                       id=receipt.message_id)
    if after_delivery and receipt.message_id is not None \
            and "unavailable" not in (receipt.error or ""):
        return problem(502, "Not delivered", receipt.error, headers=id_header,
                       id=receipt.message_id)
    return problem(503, "Cannot take the message now", receipt.error,
                   headers={**id_header, "Retry-After": "5"})


def client_for(tls: ClientTls | None, timeout: float, connect_timeout: float,
               **kwargs: Any) -> httpx.AsyncClient:
    verify: Any = tls.context() if tls is not None else True
    return httpx.AsyncClient(verify=verify, follow_redirects=False,
                             timeout=httpx.Timeout(timeout, connect=connect_timeout), **kwargs)


def raise_for_status(where: str, response: httpx.Response) -> None:
    """Map an HTTP status to the error tree: 5xx/429/408 retryable, other 4xx (and 3xx)
    permanent. The response body goes with the error so the store keeps it."""
    code = response.status_code
    if 200 <= code < 300:
        return
    # ``where`` holds the rendered URL, whose path may carry an identifier: a value for viewers
    text = Reason.of(value(where), f": HTTP {code} {response.reason_phrase}")
    if code >= 500 or code in (408, 429):
        raise RetryableError(text, response.content)
    raise PermanentError(text, response.content)


# --- source --------------------------------------------------------------------------------


@source("http", HttpSourceConfig, carries="json",
        summary="REST listener: `202` with the message id after commit (or the receiver's answer "
                "with `ack: after-delivery`), `application/problem+json` errors, size limits, TLS")
class HttpSource(AsgiSource):
    """An HTTP listener on one path; one uvicorn server per source."""

    def __init__(self, config: HttpSourceConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self._path = config.path.rstrip("/") or "/"
        self._types = {media_type(t) for t in config.content_types}
        self._listener = AsgiListener(self, config.host, config.port, config.tls,
                                      limits=config, channel=context.channel,
                                      listening=context.listening)
        self._auth = ListenerAuthenticator(config.auth) if config.auth else None
        self._route = config.path

    def unauthorized(self, request: Request, reason: str) -> Response:
        return problem(401, "Unauthorized", reason)

    async def handle(self, request: Request) -> Response:
        assert self._inbound is not None
        if (request.url.path.rstrip("/") or "/") != self._path:
            return problem(404, "Not found", f"messages go to {self.config.path}")
        if request.method not in self.config.methods:
            return problem(405, "Method not allowed", None,
                           headers={"Allow": ", ".join(self.config.methods)})
        media = media_type(request.headers.get("content-type"))
        if media not in self._types:
            return problem(415, "Unsupported media type",
                           f"accepted: {', '.join(sorted(self._types))}")
        body = await read_body(request, self.config.max_body_bytes)
        if body is None:
            return problem(413, "Message too large",
                           f"the limit is {self.config.max_body_bytes} bytes")
        meta: dict[str, Any] = {**self.meta(request), "content_type": media,
                                "method": request.method}
        if not body.strip():
            return problem(400, "Empty message", "the request has no body")
        try:
            check_syntax(media, body)
        except MessageError as exc:
            message_id = await self._inbound.reject(body, str(exc), meta)
            return problem(400, "Message refused", str(exc), id=message_id)
        receipt = await self._inbound.receive(body, meta)
        if not receipt.accepted:
            log.info("http message not accepted", channel=self.context.channel,
                     message_id=receipt.message_id, error=receipt.error)
        return receipt_response(receipt, self.config.ack == "after-delivery",
                                self.config.response_content_type)


# --- destination ---------------------------------------------------------------------------


@destination("http", HttpDestinationConfig, sends_correlation_id=True,
             summary="httpx: method, URL, body and header templates; basic, bearer, OAuth2 client "
                     "credentials; custom CA and client certificate; 5xx/429 retried, 4xx failed")
class HttpDestination:
    """Sends each message as one request; one connection pool per destination."""


    def __init__(self, config: HttpDestinationConfig, context: ConnectorContext) -> None:
        self.config = config
        self._url = compile_template(config.url)
        self._body = compile_template(config.body) if config.body is not None else None
        self._headers = {k: compile_template(v) for k, v in config.headers.items()}
        self.auth = Authenticator(config.auth, tokens=context.tokens)
        self._client = client_for(config.tls, config.timeout, config.connect_timeout)

    async def send(self, out: Outbound) -> bytes:
        ctx = RenderContext(out)
        url = ctx.render(self._url, "url").strip()
        body = (ctx.render(self._body, "body").encode("utf-8") if self._body is not None
                else out.content)
        headers = {k: ctx.render(t, f"header {k}") for k, t in self._headers.items()}
        if out.correlation_id and not any(k.lower() == "x-request-id" for k in headers):
            headers["X-Request-Id"] = out.correlation_id
        if self.config.method != "GET" and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = self.config.content_type or guess_content_type(body)
        response = await self._request(url, headers, body)
        raise_for_status(f"{self.config.method} {_redacted(url)}", response)
        return response.content

    async def _request(self, url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
        for attempt in (1, 2):
            sent = dict(headers)
            await self.auth.apply(self._client, sent)
            try:
                response = await self._client.request(
                    self.config.method, url, headers=sent,
                    content=None if self.config.method == "GET" else body)
            except httpx.InvalidURL as exc:
                raise PermanentError(Reason.of("bad URL ", value(_redacted(url)), ": ",
                                               value(exc))) from exc
            except httpx.HTTPError as exc:
                raise RetryableError(Reason.of(
                    f"{self.config.method} ", value(_redacted(url)),
                    f": {type(exc).__name__}: ", value(exc))) from exc
            if response.status_code == 401 and self.auth.refreshable and attempt == 1:
                self.auth.invalidate()  # the token expired early or was revoked: fetch anew
                continue
            return response
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._client.aclose()

    def describe(self) -> str:
        return _redacted(self.config.url)


def _redacted(url: str) -> str:
    """The URL without its query string (which may carry identifiers)."""
    return url.split("?", 1)[0]
