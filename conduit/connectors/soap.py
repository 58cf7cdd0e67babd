"""SOAP 1.1 / 1.2: a listener whose WSDL comes from the channel, and a zeep destination.

Listener: the channel names the service, its namespace and its operations, each with its input
and output parts (document/literal wrapped). ``GET <path>?wsdl`` serves the WSDL (a SOAP 1.1 and
a SOAP 1.2 binding); ``POST <path>`` takes a request in either version. The operation element
(``<RegisterPatient>`` with its parts) is what is stored and routed, as XML; templates see it as
``vars.body`` (``vars.body.mrn`` is the text of its ``mrn`` part). The answer is the operation's
response element, its parts rendered from templates (``id``, ``status``, ``input``, and with
``ack: after-delivery`` the receiver's ``response`` and, when that is HL7, ``msg``). Bad input
is answered with a SOAP fault (Client / Sender), an engine that cannot take the message with a
Server / Receiver fault so the caller retries.

Destination: any WSDL service through zeep (``AsyncClient`` on httpx): operation, arguments from
templates, WS-Security UsernameToken, TLS. Faults with a Client/Sender code are permanent,
others and HTTP 5xx retryable; the result is stored as JSON.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

import orjson
import structlog
from lxml import etree
from pydantic import Field, model_validator
from starlette.requests import Request
from starlette.responses import Response

from conduit.connectors.asgi import AsgiListener, AsgiSource, HttpListenerConfig
from conduit.connectors.base import (
    ConnectorContext,
    DestinationConfig,
    StrictModel,
)
from conduit.connectors.http import client_for, read_body
from conduit.connectors.listener_auth import (
    AUTH_DESCRIPTION,
    AUTH_EXAMPLES,
    ListenerAuth,
    ListenerAuthenticator,
)
from conduit.connectors.render import RenderContext
from conduit.connectors.tls import ClientTls, ServerTls
from conduit.core.duration import Duration
from conduit.core.errors import HL7ParseError, MessageError, PermanentError, RetryableError
from conduit.core.payload import XmlView, parse_xml
from conduit.core.protocols import Outbound
from conduit.core.registry import destination, source
from conduit.hl7.message import Message
from conduit.transforms.template import TemplateText, compile_template, render_template

log = structlog.get_logger(__name__)

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NCNAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
XSD_TYPES = {"string": "xsd:string", "int": "xsd:int", "integer": "xsd:integer",
             "decimal": "xsd:decimal", "boolean": "xsd:boolean", "date": "xsd:date",
             "dateTime": "xsd:dateTime"}
PartType = Literal["string", "int", "integer", "decimal", "boolean", "date", "dateTime"]


class SoapPart(StrictModel):
    """One part (child element) of an operation's request or response."""

    name: str = Field(pattern=NCNAME, description="Element name.", examples=["mrn"])
    type: PartType = Field("string", description="XML Schema type.")
    required: bool = Field(True, description="The request must carry it (minOccurs 1).")
    value: TemplateText | None = Field(
        None, description="Output parts: the value, a template (id, status, input, response, "
                          "msg).", examples=["{{ id }}", "{{ msg['MSA-1'] }}"])


class SoapOperation(StrictModel):
    """One operation: document/literal wrapped, request and response elements from parts."""

    name: str = Field(pattern=NCNAME, description="Operation (and request element) name.",
                      examples=["RegisterPatient"])
    soap_action: str | None = Field(None, description="SOAPAction (default: namespace/name).")
    input: list[SoapPart] = Field(min_length=1, description="Request parts.",
                                  examples=[[{"name": "mrn"}, {"name": "familyName"}]])
    output: list[SoapPart] = Field(
        default_factory=lambda: [
            SoapPart.model_validate({"name": "messageId", "value": "{{ id }}"}),
            SoapPart.model_validate({"name": "status", "value": "{{ status }}"})],
        description="Response parts, each with its value template.")


class SoapSourceConfig(HttpListenerConfig):
    """A SOAP 1.1/1.2 endpoint with a WSDL generated from this config."""


    type: Literal["soap"]
    host: str = Field("0.0.0.0", description="Address to listen on.", examples=["127.0.0.1"])
    port: int = Field(ge=0, le=65535, description="TCP port (0 = any free port).",
                      examples=[8081])
    path: str = Field("/soap", pattern=r"^/", description="Endpoint path (WSDL at ?wsdl).",
                      examples=["/soap/registration"])
    service: str = Field(pattern=NCNAME, description="Service name in the WSDL.",
                         examples=["RegistrationService"])
    namespace: str = Field(description="Target namespace of the service.",
                           examples=["urn:example:registration"])
    operations: list[SoapOperation] = Field(min_length=1, description="The operations offered.")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1, description="Largest request accepted.")
    tls: ServerTls | None = Field(None, description="Serve HTTPS (and mutual TLS).")
    auth: ListenerAuth | None = Field(None, description=AUTH_DESCRIPTION, examples=AUTH_EXAMPLES)

    @model_validator(mode="after")
    def _unique(self) -> SoapSourceConfig:
        names = [o.name for o in self.operations]
        if len(set(names)) != len(names):
            raise ValueError("operation names must be unique")
        return self


class SoapDestinationConfig(DestinationConfig):
    """Call an operation of any WSDL service."""

    type: Literal["soap"]
    wsdl: str = Field(description="WSDL URL or file.",
                      examples=["https://partner.example.org/Service?wsdl"])
    operation: str = Field(description="Operation to call.", examples=["SubmitResult"])
    service: str | None = Field(None, description="Service in the WSDL (default: the first).")
    port: str | None = Field(None, description="Port in the service (default: the first).")
    address: str | None = Field(None, description="Endpoint URL instead of the WSDL's.")
    arguments: dict[str, TemplateText] = Field(
        default_factory=dict, description="Operation arguments, each a template.",
        examples=[{"patientId": "{{ msg['PID-3.1'] }}", "result": "{{ msg['OBX-5'] }}"}])
    username: str | None = Field(None, description="WS-Security UsernameToken user.")
    password: str | None = Field(None, description="WS-Security password; use ${VAR}.")
    password_digest: bool = Field(False, description="Send PasswordDigest, not PasswordText.")
    timeout: Duration = Field(30.0, description="Longest wait for a response.")
    connect_timeout: Duration = Field(10.0, description="Longest wait for a connection.")
    tls: ClientTls | None = Field(None, description="Custom CA, client certificate (mTLS).")


# --- source -------------------------------------------------------------------------------------


class Fault(Exception):
    def __init__(self, sender: bool, text: str) -> None:
        super().__init__(text)
        self.sender = sender
        self.text = text


def fault_response(version: str, sender: bool, text: str) -> Response:
    if version == "1.2":
        code = "soap:Sender" if sender else "soap:Receiver"
        body = (f'<soap:Envelope xmlns:soap="{SOAP12}"><soap:Body><soap:Fault>'
                f"<soap:Code><soap:Value>{code}</soap:Value></soap:Code>"
                f'<soap:Reason><soap:Text xml:lang="en">{escape(text)}</soap:Text></soap:Reason>'
                "</soap:Fault></soap:Body></soap:Envelope>")
        return Response(body, 400 if sender else 500,
                        media_type="application/soap+xml; charset=utf-8")
    code = "soap:Client" if sender else "soap:Server"
    body = (f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><soap:Fault>'
            f"<faultcode>{code}</faultcode><faultstring>{escape(text)}</faultstring>"
            "</soap:Fault></soap:Body></soap:Envelope>")
    return Response(body, 500, media_type="text/xml; charset=utf-8")


def _check_value(part: SoapPart, value: str) -> None:
    try:
        if part.type in ("int", "integer"):
            int(value.strip())
        elif part.type == "decimal":
            Decimal(value.strip())
        elif part.type == "boolean":
            if value.strip() not in ("true", "false", "1", "0"):
                raise ValueError
        elif part.type == "date":
            dt.date.fromisoformat(value.strip()[:10])
        elif part.type == "dateTime":
            dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, InvalidOperation):
        raise Fault(True, f"part {part.name}: not a valid {part.type}") from None


@source("soap", SoapSourceConfig, carries="xml",
        summary="SOAP 1.1/1.2 listener serving its WSDL at `?wsdl`, faults on bad input")
class SoapSource(AsgiSource):
    """The SOAP listener; one uvicorn server per source."""

    def __init__(self, config: SoapSourceConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context
        self._path = config.path.rstrip("/") or "/"
        self._operations = {o.name: o for o in config.operations}
        self._outputs = {o.name: [(p, compile_template(p.value or "")) for p in o.output]
                         for o in config.operations}
        self._listener = AsgiListener(self, config.host, config.port, config.tls,
                                      limits=config, channel=context.channel,
                                      listening=context.listening)
        self._auth = ListenerAuthenticator(config.auth) if config.auth else None
        self._route = config.path

    def unauthorized(self, request: Request, reason: str) -> Response:
        content_type = request.headers.get("content-type", "").lower()
        return fault_response("1.2" if "application/soap+xml" in content_type else "1.1",
                              True, reason)

    async def handle(self, request: Request) -> Response:
        if (request.url.path.rstrip("/") or "/") != self._path:
            return Response("not found", 404, media_type="text/plain")
        if request.method == "GET" and request.url.query.lower() in ("wsdl", "wsdl="):
            location = str(request.url.replace(query=""))
            return Response(self.wsdl(location), 200, media_type="text/xml; charset=utf-8")
        if request.method != "POST":
            return Response("use POST, or GET ?wsdl", 405, headers={"Allow": "GET, POST"},
                            media_type="text/plain")
        content_type = request.headers.get("content-type", "").lower()
        version = "1.2" if "application/soap+xml" in content_type else "1.1"
        body = await read_body(request, self.config.max_body_bytes)
        if body is None:
            return fault_response(version, True, "request too large")
        try:
            return await self._call(body, version, request)
        except Fault as fault:
            return fault_response(version, fault.sender, fault.text)

    async def _call(self, body: bytes, version: str, request: Request) -> Response:
        assert self._inbound is not None
        meta: dict[str, Any] = self.meta(request)
        try:
            envelope = parse_xml(body)
        except MessageError as exc:
            await self._inbound.reject(body, str(exc), meta)
            raise Fault(True, str(exc)) from None
        namespace = SOAP12 if version == "1.2" else SOAP11
        if envelope.tag != f"{{{namespace}}}Envelope":
            await self._inbound.reject(body, "not a SOAP envelope", meta)
            raise Fault(True, f"expected a SOAP {version} Envelope")
        soap_body = envelope.find(f"{{{namespace}}}Body")
        children = [c for c in (soap_body if soap_body is not None else [])
                    if isinstance(c.tag, str)]
        if len(children) != 1:
            raise Fault(True, "the SOAP Body must hold exactly one operation element")
        element = children[0]
        qname = etree.QName(element)
        operation = self._operations.get(qname.localname)
        if operation is None or qname.namespace != self.config.namespace:
            raise Fault(True, f"unknown operation {{{qname.namespace}}}{qname.localname}")
        inputs = self._inputs(operation, element)
        payload = etree.tostring(element, encoding="utf-8")
        meta["message_type"] = operation.name
        receipt = await self._inbound.receive(payload, meta)
        if not receipt.accepted:
            if receipt.permanent:
                raise Fault(True, receipt.error or "message refused")
            raise Fault(False, receipt.error or "cannot take the message now; please resend")
        status = "filtered" if receipt.filtered else (
            "delivered" if self.config.ack == "after-delivery" else "accepted")
        response_text = (receipt.response or b"").decode("utf-8", errors="replace")
        message = None
        if response_text.lstrip().startswith("MSH"):
            try:
                message = Message.parse(receipt.response or b"")
            except HL7ParseError:
                message = None
        parts = []
        for part, template in self._outputs[operation.name]:
            try:
                value = render_template(template, message, None, id=receipt.message_id,
                                        status=status, input=inputs, response=response_text)
            except Exception as exc:
                raise Fault(False, f"output part {part.name}: {type(exc).__name__}") from exc
            parts.append(f"<tns:{part.name}>{escape(value)}</tns:{part.name}>")
        prefix = "soap"
        envelope_text = (
            f'<{prefix}:Envelope xmlns:{prefix}="{namespace}" '
            f'xmlns:tns={quoteattr(self.config.namespace)}><{prefix}:Body>'
            f"<tns:{operation.name}Response>{''.join(parts)}</tns:{operation.name}Response>"
            f"</{prefix}:Body></{prefix}:Envelope>")
        media = "application/soap+xml" if version == "1.2" else "text/xml"
        headers = {"X-Conduit-Message-Id": str(receipt.message_id)}
        return Response(envelope_text, 200, headers=headers,
                        media_type=f"{media}; charset=utf-8")

    def _inputs(self, operation: SoapOperation, element: Any) -> dict[str, str]:
        view = XmlView(element)
        known = {p.name for p in operation.input}
        values: dict[str, str] = {}
        for child in element:
            if isinstance(child.tag, str) and etree.QName(child).localname not in known:
                raise Fault(True, f"unexpected element {etree.QName(child).localname}")
        for part in operation.input:
            found = view.all(part.name)
            if not found:
                if part.required:
                    raise Fault(True, f"part {part.name} is missing")
                continue
            values[part.name] = found[0].text
            _check_value(part, values[part.name])
        return values

    def wsdl(self, location: str) -> str:
        ns = self.config.namespace
        service = self.config.service

        def sequence(parts: list[SoapPart]) -> str:
            return "".join(
                f'<xsd:element name="{p.name}" type="{XSD_TYPES[p.type]}" '
                f'minOccurs="{1 if p.required else 0}"/>' for p in parts)

        elements: list[str] = []
        messages: list[str] = []
        port_ops: list[str] = []
        ops11: list[str] = []
        ops12: list[str] = []
        for op in self.config.operations:
            action = op.soap_action or f"{ns.rstrip('/')}/{op.name}"
            elements.append(
                f'<xsd:element name="{op.name}"><xsd:complexType><xsd:sequence>'
                f"{sequence(op.input)}</xsd:sequence></xsd:complexType></xsd:element>"
                f'<xsd:element name="{op.name}Response"><xsd:complexType><xsd:sequence>'
                f"{sequence(op.output)}</xsd:sequence></xsd:complexType></xsd:element>")
            messages.append(
                f'<wsdl:message name="{op.name}Request"><wsdl:part name="parameters" '
                f'element="tns:{op.name}"/></wsdl:message>'
                f'<wsdl:message name="{op.name}Response"><wsdl:part name="parameters" '
                f'element="tns:{op.name}Response"/></wsdl:message>')
            port_ops.append(
                f'<wsdl:operation name="{op.name}"><wsdl:input message="tns:{op.name}Request"/>'
                f'<wsdl:output message="tns:{op.name}Response"/></wsdl:operation>')
            for prefix, bucket in (("soap", ops11), ("soap12", ops12)):
                bucket.append(
                    f'<wsdl:operation name="{op.name}"><{prefix}:operation '
                    f"soapAction={quoteattr(action)}/><wsdl:input><{prefix}:body use=\"literal\"/>"
                    f'</wsdl:input><wsdl:output><{prefix}:body use="literal"/></wsdl:output>'
                    f"</wsdl:operation>")
        transport = "http://schemas.xmlsoap.org/soap/http"
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
            'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" '
            'xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            f"xmlns:tns={quoteattr(ns)} targetNamespace={quoteattr(ns)} name=\"{service}\">"
            f"<wsdl:types><xsd:schema targetNamespace={quoteattr(ns)} "
            f'elementFormDefault="qualified">{"".join(elements)}</xsd:schema></wsdl:types>'
            f"{''.join(messages)}"
            f'<wsdl:portType name="{service}PortType">{"".join(port_ops)}</wsdl:portType>'
            f'<wsdl:binding name="{service}Soap11" type="tns:{service}PortType">'
            f'<soap:binding style="document" transport="{transport}"/>{"".join(ops11)}'
            "</wsdl:binding>"
            f'<wsdl:binding name="{service}Soap12" type="tns:{service}PortType">'
            f'<soap12:binding style="document" transport="{transport}"/>{"".join(ops12)}'
            "</wsdl:binding>"
            f'<wsdl:service name="{service}">'
            f'<wsdl:port name="{service}Soap11" binding="tns:{service}Soap11">'
            f"<soap:address location={quoteattr(location)}/></wsdl:port>"
            f'<wsdl:port name="{service}Soap12" binding="tns:{service}Soap12">'
            f"<soap12:address location={quoteattr(location)}/></wsdl:port>"
            "</wsdl:service></wsdl:definitions>")


# --- destination --------------------------------------------------------------------------------


_SENDER_FAULT = re.compile(r"(client|sender)", re.IGNORECASE)
#: The correlation id of the message being sent, for the transport's request hook (zeep builds
#: the HTTP request itself; the call runs in the sending task, so the context carries it).
_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("soap_request_id",
                                                                         default=None)


async def _add_request_id(request: Any) -> None:
    request_id = _REQUEST_ID.get()
    if request_id and "x-request-id" not in request.headers:
        request.headers["X-Request-Id"] = request_id


@destination("soap", SoapDestinationConfig, sends_correlation_id=True,
             summary="zeep client for any WSDL, WS-Security UsernameToken")
class SoapDestination:
    """Calls one operation through zeep; the WSDL is loaded (in a thread) on first use."""


    def __init__(self, config: SoapDestinationConfig, context: ConnectorContext) -> None:
        self.config = config
        self._arguments = {k: compile_template(v) for k, v in config.arguments.items()}
        self._service: Any = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    def _build(self) -> Any:
        import httpx
        from zeep import AsyncClient, Settings
        from zeep.transports import AsyncTransport

        config = self.config
        verify: Any = config.tls.context() if config.tls else True
        wsdl_client = httpx.Client(verify=verify, timeout=httpx.Timeout(
            config.timeout, connect=config.connect_timeout))
        client_ = client_for(config.tls, config.timeout, config.connect_timeout)
        client_.event_hooks["request"].append(_add_request_id)
        transport = AsyncTransport(client=client_, wsdl_client=wsdl_client)
        wsse = None
        if config.username is not None:
            from zeep.wsse.username import UsernameToken

            wsse = UsernameToken(config.username, config.password or "",
                                 use_digest=config.password_digest)
        client = AsyncClient(config.wsdl, transport=transport, wsse=wsse,
                             settings=Settings(strict=True, xml_huge_tree=False))
        if config.address or config.service or config.port:
            service_name = config.service or next(iter(client.wsdl.services))
            port_name = config.port or next(iter(client.wsdl.services[service_name].ports))
            binding = client.wsdl.services[service_name].ports[port_name].binding.name
            address = config.address or \
                client.wsdl.services[service_name].ports[port_name].binding_options["address"]
            service = client.create_service(binding, address)
        else:
            service = client.service
        return client, service

    async def _ready(self) -> Any:
        async with self._lock:
            if self._service is None:
                try:
                    self._client, self._service = await asyncio.to_thread(self._build)
                except Exception as exc:
                    raise RetryableError(f"cannot load WSDL {self.config.wsdl}: "
                                         f"{type(exc).__name__}: {exc}") from exc
        return self._service

    async def send(self, out: Outbound) -> bytes:
        from zeep.exceptions import Fault as ZeepFault
        from zeep.exceptions import TransportError, ValidationError
        from zeep.helpers import serialize_object

        service = await self._ready()
        ctx = RenderContext(out)
        arguments = {k: ctx.render(t, f"argument {k}") for k, t in self._arguments.items()}
        try:
            operation = service[self.config.operation]
        except AttributeError as exc:
            raise PermanentError(f"the service has no operation {self.config.operation}") \
                from exc
        token = _REQUEST_ID.set(out.correlation_id)
        try:
            result = await operation(**arguments)
        except ZeepFault as fault:
            text = f"SOAP fault {fault.code}: {fault.message}"
            if _SENDER_FAULT.search(str(fault.code or "")):
                raise PermanentError(text) from fault
            raise RetryableError(text) from fault
        except TransportError as exc:
            text = f"{self.config.operation}: HTTP {exc.status_code}"
            if exc.status_code >= 500 or exc.status_code in (408, 429):
                raise RetryableError(text, exc.content) from exc
            raise PermanentError(text, exc.content) from exc
        except (ValidationError, TypeError, ValueError) as exc:
            raise PermanentError(f"{self.config.operation}: arguments do not fit the WSDL: "
                                 f"{exc}") from exc
        except Exception as exc:  # httpx transport errors, timeouts
            raise RetryableError(f"{self.config.operation}: {type(exc).__name__}: {exc}") \
                from exc
        finally:
            _REQUEST_ID.reset(token)
        return orjson.dumps(serialize_object(result, dict), default=str)

    async def close(self) -> None:
        if self._client is not None:
            transport = self._client.transport
            await transport.aclose()
            transport.wsdl_client.close()
            self._client = self._service = None

    def describe(self) -> str:
        return self.config.wsdl.split("?", 1)[0]
