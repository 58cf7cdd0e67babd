"""FHIR R4 over REST: a listener under a base path, and a destination for any FHIR server.

Listener: ``POST [base]/[type]`` (create), ``PUT [base]/[type]/[id]`` (update),
``PUT [base]/[type]?identifier=[system|]value`` (conditional update, accepted only when the
resource carries that identifier), ``POST [base]`` with a transaction or batch Bundle, and
``GET [base]/metadata`` (a CapabilityStatement built from the config). Each resource is
checked against the FHIR models of ``fhir.resources`` (R4B, which shares R4's JSON for the
resources in use; ``validate: false`` skips it); a request that fails
is answered 400 (not JSON, wrong type or id) or 422 (invalid resource) with an OperationOutcome
whose issues each name the path of one error (``Patient.name[0].family``). A resource or Bundle
accepted is committed and queued first, then answered ``201 Created`` (``200`` with a
transaction-response / batch-response Bundle for Bundles), or, with ``ack: after-delivery``,
with the receiver's own answer. A Bundle is one message: a transaction stays whole.

Destination: ``operation`` create, update, conditional create / update by identifier,
transaction (or ``auto``: a Bundle is POSTed to the base, a resource with an id is PUT, others
POSTed); OAuth2 client credentials or SMART Backend Services auth; on failure the server's
OperationOutcome is kept as the delivery's response.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import orjson
import structlog
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from starlette.requests import Request
from starlette.responses import Response

from conduit.connectors.asgi import AsgiListener, AsgiSource, HttpListenerConfig
from conduit.connectors.auth import Auth, Authenticator
from conduit.connectors.base import (
    ConnectorContext,
    DestinationConfig,
)
from conduit.connectors.http import client_for, media_type, raise_for_status, read_body
from conduit.connectors.listener_auth import (
    AUTH_DESCRIPTION,
    AUTH_EXAMPLES,
    ListenerAuth,
    ListenerAuthenticator,
)
from conduit.connectors.tls import ClientTls, ServerTls
from conduit.core.duration import Duration
from conduit.core.errors import MessageError, PermanentError, RetryableError
from conduit.core.payload import parse_json
from conduit.core.protocols import Outbound
from conduit.core.registry import destination, source

log = structlog.get_logger(__name__)

FHIR_JSON = "application/fhir+json"
JSON_TYPES = {FHIR_JSON, "application/json", "application/json+fhir"}


class FhirSourceConfig(HttpListenerConfig):
    """A FHIR R4 endpoint that accepts resources and Bundles."""


    type: Literal["fhir"]
    host: str = Field("0.0.0.0", description="Address to listen on.", examples=["127.0.0.1"])
    port: int = Field(ge=0, le=65535, description="TCP port (0 = any free port).",
                      examples=[8090])
    base_path: str = Field("/fhir", pattern=r"^/", description="The FHIR base path.",
                           examples=["/fhir", "/fhir/r4"])
    resources: list[str] = Field(
        default_factory=list,
        description="Resource types accepted (empty: every type). A Bundle's entries must be "
                    "of these types too.", examples=[["Patient", "Observation", "Encounter"]])
    validate_resources: bool = Field(
        True, alias="validate",
        description="Check each resource against the FHIR models (fhir.resources R4B).")
    bundles: bool = Field(True, description="Accept transaction and batch Bundles at the base.")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Largest body accepted.")
    tls: ServerTls | None = Field(None, description="Serve HTTPS (and mutual TLS).")
    auth: ListenerAuth | None = Field(None, description=AUTH_DESCRIPTION, examples=AUTH_EXAMPLES)


class FhirDestinationConfig(DestinationConfig):
    """Send resources and Bundles to a FHIR R4 server."""

    type: Literal["fhir"]
    url: str = Field(description="The server's FHIR base URL.",
                     examples=["https://fhir.example.org/r4", "${FHIR_BASE_URL}"])
    operation: Literal["auto", "create", "update", "conditional-create", "conditional-update",
                       "transaction"] = Field(
        "auto",
        description="create: POST [type]. update: PUT [type]/[id]. conditional-create: POST "
                    "with If-None-Exist on the identifier. conditional-update: PUT "
                    "[type]?identifier=... (create or update by identifier). transaction: POST "
                    "a Bundle to the base. auto: a Bundle is POSTed to the base, a resource "
                    "with an id is PUT, any other POSTed.")
    identifier_system: str | None = Field(
        None, description="Which identifier the conditional operations match on (its system); "
                          "default: the resource's first identifier.",
        examples=["urn:oid:1.2.36.146.595.217.0.1"])
    prefer: Literal["return=minimal", "return=representation", "return=OperationOutcome"] | None \
        = Field("return=representation", description="Prefer header: what the server answers.")
    auth: Auth | None = Field(None, description="How to authenticate (oauth2 covers SMART "
                                                "Backend Services with private_key_jwt).")
    timeout: Duration = Field(30.0, description="Longest wait for the whole response.")
    connect_timeout: Duration = Field(10.0, description="Longest wait for a connection.")
    tls: ClientTls | None = Field(None, description="Custom CA, client certificate (mTLS).")


# --- OperationOutcome and validation --------------------------------------------------------


def outcome(issues: list[tuple[str, str, str | None]]) -> dict[str, Any]:
    """An OperationOutcome from (code, diagnostics, path) triples, all of severity error."""
    entries = []
    for code, diagnostics, path in issues:
        issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
        if path:
            issue["expression"] = [path]
        entries.append(issue)
    return {"resourceType": "OperationOutcome", "issue": entries}


def fhir_response(status: int, content: dict[str, Any],
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status, headers=headers, media_type=FHIR_JSON)


def fail(status: int, code: str, diagnostics: str, path: str | None = None) -> Response:
    return fhir_response(status, outcome([(code, diagnostics, path)]))


def fhir_path(root: str, loc: tuple[Any, ...]) -> str:
    """``('name', 0, 'family')`` under Patient -> ``Patient.name[0].family``."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("__root__",):
            path += f".{part}"
    return path


def validation_issues(resource: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """Every error in ``resource`` as (code, message, FHIRPath-like path); empty when valid."""
    from fhir.resources.R4B import get_fhir_model_class

    kind = resource.get("resourceType")
    try:
        model = get_fhir_model_class(str(kind))
    except (KeyError, ValueError):
        return [("not-supported", f"unknown resource type {kind!r}", "resourceType")]
    try:
        model.model_validate(resource)
    except PydanticValidationError as exc:
        return [("structure" if error["type"] in ("extra_forbidden", "missing") else "value",
                 _readable(error), fhir_path(str(kind), tuple(error["loc"])))
                for error in exc.errors(include_url=False, include_input=False)]
    return []


def _readable(error: Any) -> str:
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


# --- source ---------------------------------------------------------------------------------


@source("fhir", FhirSourceConfig, carries="fhir",
        summary="FHIR R4 endpoint: create/update, transaction and batch Bundles, `/metadata`, "
                "`fhir.resources` R4B validation answered with an OperationOutcome")
class FhirSource(AsgiSource):
    """The FHIR listener; one uvicorn server per source."""

    def __init__(self, config: FhirSourceConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self.base = config.base_path.rstrip("/")
        self._listener = AsgiListener(self, config.host, config.port, config.tls,
                                      limits=config, channel=context.channel,
                                      listening=context.listening)
        self._auth = ListenerAuthenticator(config.auth) if config.auth else None
        self._route = self.base

    def unauthorized(self, request: Request, reason: str) -> Response:
        return fail(401, "login", reason)

    def public(self, request: Request) -> bool:
        # The CapabilityStatement stays readable, as SMART clients discover endpoints there.
        return request.method == "GET" and request.url.path.rstrip("/") == self.base + "/metadata"

    async def handle(self, request: Request) -> Response:
        path = request.url.path.rstrip("/")
        if path != self.base and not path.startswith(self.base + "/"):
            return fail(404, "not-found", f"the FHIR base is {self.base}")
        parts = [p for p in path[len(self.base):].split("/") if p]
        method = request.method
        if method == "GET" and parts == ["metadata"]:
            return fhir_response(200, self.capability_statement(request))
        if method == "POST" and not parts and self.config.bundles:
            return await self._accept(request, None, None, bundle=True)
        if method == "POST" and len(parts) == 1:
            return await self._accept(request, parts[0], None)
        if method == "PUT" and len(parts) == 2:
            return await self._accept(request, parts[0], parts[1])
        if method == "PUT" and len(parts) == 1 and request.url.query:
            return await self._accept(request, parts[0], None)
        return fail(405 if parts else 400, "not-supported",
                    f"{method} {'/'.join(parts) or '[base]'} is not supported here; this "
                    "endpoint accepts create, update, conditional update by identifier, "
                    "transaction and batch")

    def _allowed(self, kind: str) -> bool:
        return not self.config.resources or kind in self.config.resources

    async def _accept(self, request: Request, kind: str | None, resource_id: str | None,
                      *, bundle: bool = False) -> Response:
        assert self._inbound is not None
        if kind is not None and not self._allowed(kind):
            return fail(404, "not-supported", f"resource type {kind} is not accepted here")
        media = media_type(request.headers.get("content-type"))
        if media not in JSON_TYPES:
            return fail(415, "not-supported", "send application/fhir+json")
        body = await read_body(request, self.config.max_body_bytes)
        if body is None:
            return fail(413, "too-costly", f"the limit is {self.config.max_body_bytes} bytes")
        meta: dict[str, Any] = self.meta(request)
        condition = request.query_params if request.method == "PUT" and resource_id is None \
            else None
        problem = self._check(body, kind, resource_id, bundle) or (
            _condition_problem(body, kind, condition) if condition is not None else None)
        if problem is not None:
            status, issues = problem
            message_id = await self._inbound.reject(
                body, "; ".join(f"{p}: {d}" if p else d for _, d, p in issues[:5]), meta)
            log.info("fhir input refused", channel=self.context.channel, message_id=message_id,
                     status=status, issues=len(issues))
            return fhir_response(status, outcome(issues))
        resource = orjson.loads(body)
        receipt = await self._inbound.receive(body, meta)
        headers = {"X-Conduit-Message-Id": str(receipt.message_id)} \
            if receipt.message_id is not None else {}
        if not receipt.accepted:
            if receipt.permanent:
                return fhir_response(400, outcome([("invalid", receipt.error or "refused", None)]),
                                     headers)
            delivered = receipt.message_id is not None and self.config.ack == "after-delivery" \
                and "unavailable" not in (receipt.error or "")
            status = 502 if delivered else 503
            if receipt.response and receipt.response.lstrip().startswith(b"{"):
                return Response(receipt.response, status, headers=headers, media_type=FHIR_JSON)
            headers["Retry-After"] = "5"
            return fhir_response(status, outcome([("transient", receipt.error or "not accepted",
                                                   None)]), headers)
        if self.config.ack == "after-delivery" and receipt.response:
            return Response(receipt.response, 200, headers=headers, media_type=FHIR_JSON)
        return self._created(resource, receipt.message_id, headers, bundle)

    def _check(self, body: bytes, kind: str | None, resource_id: str | None,
               bundle: bool) -> tuple[int, list[tuple[str, str, str | None]]] | None:
        """None when the body may be accepted, else the status and the issues."""
        try:
            resource = parse_json(body)
        except MessageError as exc:
            return 400, [("invalid", str(exc), None)]
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            return 400, [("invalid", "the body is not a FHIR resource (no resourceType)",
                          "resourceType")]
        actual = resource["resourceType"]
        if bundle:
            if actual != "Bundle" or resource.get("type") not in ("transaction", "batch"):
                return 400, [("invalid", "the base accepts transaction or batch Bundles only",
                              "Bundle.type")]
            for n, entry in enumerate(resource.get("entry") or []):
                inner = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(inner, dict) and not self._allowed(str(inner.get("resourceType"))):
                    return 422, [("not-supported", f"{inner.get('resourceType')} is not "
                                  f"accepted here", f"Bundle.entry[{n}].resource")]
        elif actual != kind:
            return 400, [("invalid", f"the body is a {actual}, the URL says {kind}",
                          "resourceType")]
        if resource_id is not None and resource.get("id") != resource_id:
            return 400, [("invalid", "the resource id must match the id in the URL", f"{kind}.id")]
        if self.config.validate_resources:
            issues = validation_issues(resource)
            if issues:
                return 422, issues
        return None

    def _created(self, resource: dict[str, Any], message_id: int | None,
                 headers: dict[str, str], bundle: bool) -> Response:
        """201 with the resource as accepted, or the transaction/batch response Bundle."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if not bundle:
            resource = {**resource, "id": resource.get("id") or f"conduit-{message_id}",
                        "meta": {**(resource.get("meta") or {}), "versionId": "1",
                                 "lastUpdated": now}}
            location = f"{self.base}/{resource['resourceType']}/{resource['id']}/_history/1"
            return fhir_response(201, resource, {**headers, "Location": location,
                                                 "ETag": 'W/"1"'})
        entries = []
        for n, entry in enumerate(resource.get("entry") or []):
            request = entry.get("request") or {}
            inner = entry.get("resource") or {}
            kind = inner.get("resourceType", "")
            rid = inner.get("id") or f"conduit-{message_id}-{n + 1}"
            status = "200 OK" if request.get("method") == "PUT" else "201 Created"
            entries.append({"response": {"status": status, "location": f"{kind}/{rid}/_history/1",
                                         "etag": 'W/"1"', "lastModified": now}})
        answer = {"resourceType": "Bundle", "id": f"conduit-{message_id}",
                  "type": f"{resource['type']}-response", "entry": entries}
        return fhir_response(200, answer, headers)

    def capability_statement(self, request: Request) -> dict[str, Any]:
        interactions = [{"code": "create"}, {"code": "update"}]
        kinds = self.config.resources or ["Patient", "Observation", "Encounter", "Bundle"]
        rest: dict[str, Any] = {
            "mode": "server",
            "documentation": "Conduit integration endpoint: resources are accepted, stored and "
                             "routed; they are not kept for reading here.",
            "resource": [{"type": k, "interaction": interactions, "versioning": "no-version",
                          "conditionalCreate": False, "conditionalUpdate": True}
                         for k in kinds],
        }
        if self.config.bundles:
            rest["interaction"] = [{"code": "transaction"}, {"code": "batch"}]
        base = str(request.base_url).rstrip("/") + self.base
        return {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": datetime.now(UTC).date().isoformat(),
            "kind": "instance",
            "software": {"name": "Conduit"},
            "implementation": {"description": f"Conduit channel {self.context.channel}",
                               "url": base},
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [rest],
        }


def _condition_problem(body: bytes, kind: str | None, query: Any
                       ) -> tuple[int, list[tuple[str, str, str | None]]] | None:
    """A conditional update names its resource by ``identifier=[system|]value``; the body must
    carry that identifier, or the URL and the body could name two different patients."""
    if set(query.keys()) != {"identifier"} or len(query.getlist("identifier")) != 1:
        return 400, [("not-supported", "a conditional update here matches on one "
                      "'identifier' parameter only", None)]
    token = query["identifier"]
    system, _, value = token.rpartition("|") if "|" in token else (None, "", token)
    resource = orjson.loads(body)
    identifiers = resource.get("identifier") or []
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    for identifier in identifiers:
        if (isinstance(identifier, dict) and identifier.get("value") == value
                and (system is None or identifier.get("system") == system)):
            return None
    return 400, [("invalid", f"the {kind} has no identifier {token!r}, which the URL names",
                  f"{kind}.identifier")]


# --- destination ----------------------------------------------------------------------------


@destination("fhir", FhirDestinationConfig, sends_correlation_id=True,
             summary="create, update, conditional create/update by identifier, transaction; "
                     "OAuth2 / SMART backend services")
class FhirDestination:
    """One FHIR server; the operation decides method and URL per message."""


    def __init__(self, config: FhirDestinationConfig, context: ConnectorContext) -> None:
        self.config = config
        self.base = config.url.rstrip("/")
        self.auth = Authenticator(config.auth, tokens=context.tokens)
        self._client = client_for(config.tls, config.timeout, config.connect_timeout)

    def request_for(self, resource: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
        """(method, URL, extra headers) for one resource under the configured operation."""
        kind = resource.get("resourceType")
        if not isinstance(kind, str) or not kind.isalpha():
            raise PermanentError("the content is not a FHIR resource (no resourceType)")
        operation = self.config.operation
        if operation == "auto":
            operation = ("transaction" if kind == "Bundle" and resource.get("type") in
                         ("transaction", "batch")
                         else "update" if resource.get("id") else "create")
        if operation == "transaction":
            if kind != "Bundle":
                raise PermanentError(f"transaction needs a Bundle, the content is a {kind}")
            return "POST", self.base, {}
        if operation == "create":
            return "POST", f"{self.base}/{kind}", {}
        if operation == "update":
            rid = resource.get("id")
            if not rid:
                raise PermanentError(f"update needs an id; the {kind} has none")
            return "PUT", f"{self.base}/{kind}/{quote(str(rid), safe='')}", {}
        query = self._identifier_query(resource, kind)
        if operation == "conditional-create":
            return "POST", f"{self.base}/{kind}", {"If-None-Exist": query}
        return "PUT", f"{self.base}/{kind}?{query}", {}

    def _identifier_query(self, resource: dict[str, Any], kind: str) -> str:
        identifiers = resource.get("identifier") or []
        if isinstance(identifiers, dict):
            identifiers = [identifiers]
        for identifier in identifiers:
            if not isinstance(identifier, dict) or not identifier.get("value"):
                continue
            system = identifier.get("system")
            if self.config.identifier_system and system != self.config.identifier_system:
                continue
            token = f"{system}|{identifier['value']}" if system else str(identifier["value"])
            return "identifier=" + quote(token, safe="")
        raise PermanentError(f"conditional {self.config.operation} needs an identifier"
                             + (f" with system {self.config.identifier_system}"
                                if self.config.identifier_system else "") + f" on the {kind}")

    async def send(self, out: Outbound) -> bytes:
        try:
            resource = parse_json(out.content)
        except MessageError as exc:
            raise PermanentError(f"not FHIR JSON: {exc}") from exc
        if not isinstance(resource, dict):
            raise PermanentError("not a FHIR resource")
        method, url, extra = self.request_for(resource)
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, **extra}
        if self.config.prefer:
            headers["Prefer"] = self.config.prefer
        if out.correlation_id:
            headers["X-Request-Id"] = out.correlation_id
        for attempt in (1, 2):
            sent = dict(headers)
            await self.auth.apply(self._client, sent)
            try:
                response = await self._client.request(method, url, headers=sent,
                                                      content=out.content)
            except Exception as exc:
                if isinstance(exc, PermanentError):
                    raise
                raise RetryableError(f"{method} {url.split('?')[0]}: {type(exc).__name__}: "
                                     f"{exc}") from exc
            if response.status_code == 401 and self.auth.refreshable and attempt == 1:
                self.auth.invalidate()
                continue
            break
        raise_for_status(f"FHIR {method} {url.split('?')[0]}", response)
        return response.content

    async def close(self) -> None:
        await self._client.aclose()

    def describe(self) -> str:
        return self.base
