"""The pure pipeline: parse → (strict validation) → filter → transform steps → routes.

The runtime calls :meth:`Pipeline.process` once per message, on the hot path: everything that can
be prepared per channel (steps built, templates compiled, regexes compiled) is done in
``__init__``, nothing here does I/O, and a problem with a message never raises: it comes back
as status ``ERROR`` with a reason that names the rule or step that failed; what it quotes of the
data (a field's value, an exception's text) is marked so that viewers never see it
(:mod:`conduit.core.reason`).
``conduit test`` runs the same code with ``trace=True`` to show each stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from conduit.core.errors import HL7ParseError, MessageError
from conduit.core.payload import parse_payload
from conduit.core.reason import Reason, value
from conduit.core.timezone import effective_zone
from conduit.engine.channel import Channel
from conduit.hl7.codec import encode
from conduit.hl7.message import Message
from conduit.store.store import Route
from conduit.transforms.filter import Subject
from conduit.transforms.registry import Step, StepState

FILTERED = "FILTERED"
TRANSFORMED = "TRANSFORMED"
ERROR = "ERROR"

_REASON_LIMIT = 300


@dataclass(slots=True)
class PipelineResult:
    """The outcome for one message; ``stages`` is filled only when tracing."""

    status: str
    reason: Reason | None
    message: Message | None
    transformed: bytes | None
    routes: list[Route] = field(default_factory=list)
    stages: list[tuple[str, str]] = field(default_factory=list)


class Pipeline:
    """One channel's processing, prepared once and run per message."""

    __slots__ = ("_data_type", "_default_zone", "_destinations", "_filter", "_steps", "_strict",
                 "channel")

    def __init__(self, channel: Channel, *, default_zone: str | None = None) -> None:
        """``default_zone``: the engine's default time zone setting (else $CONDUIT_TIMEZONE,
        else the host's zone) for times sent without an offset when the channel names none."""
        self.channel = channel
        self._default_zone = None if channel.timezone else effective_zone(None, default_zone)[0]
        self._filter = channel.filter
        self._steps: list[tuple[str, Step]] = [
            (f"step {i} ({step.label})", step)
            for i, step in enumerate((channel.registry.build_step(e.kind, e.options)
                                      for e in channel.transform),
                                     start=1)
        ]
        self._destinations = [(d.name, d.when) for d in channel.destinations]
        self._data_type = channel.data_type or "hl7v2"
        self._strict: Callable[[Message], list[str]] | None = None
        if channel.validation == "strict":
            from conduit.hl7.strict import validate_strict

            self._strict = validate_strict

    def process(self, raw: bytes, *, message: Message | None = None, validated: bool = False,
                trace: bool = False) -> PipelineResult:
        """Run one message through; never raises for a problem with the message.

        ``message`` is ``raw`` already parsed, and ``validated`` says strict validation was
        done: the runtime reads each message once at intake (validating off the event loop)
        and hands it in, so nothing is parsed or validated twice."""
        stages: list[tuple[str, str]] = []
        if trace:
            stages.append(("raw", raw.decode("utf-8", errors="replace")))
        if self._data_type != "hl7v2":
            return self._process_body(raw, stages, trace)
        if message is None:
            try:
                message = Message.parse(raw)
            except HL7ParseError as exc:
                return _error(Reason.of("not an HL7 v2 message: ", value(exc)), None, stages)
            except Exception as exc:
                return _error(Reason.of("not an HL7 v2 message: ", _short(exc)), None, stages)

        if self._strict is not None and not validated:
            try:
                problems = self._strict(message)
            except Exception as exc:
                problems = [f"validator failed: {_short(exc)}"]
            if problems:
                return _error(strict_reason(problems), message, stages)

        if self._filter is not None:
            if not self._filter.passes(message):
                reason = self._filter.explain(message)
                if trace:
                    stages.append(("filter", f"filtered: {reason}"))
                return PipelineResult(FILTERED, reason, message, None, [], stages)
            if trace:
                stages.append(("filter", f"passed: {self._filter.explain(message)}"))
        elif trace:
            stages.append(("filter", "passed: no filter"))

        received = message
        state = StepState(message, timezone=self.channel.timezone,
                          default_timezone=self._default_zone)
        for label, step in self._steps:
            body = state.body
            try:
                step(state)
            except Exception as exc:
                return _error(Reason.of(f"transform {label} failed: ", _short(exc)), message,
                              stages)
            message = state.message  # a step may replace the message (hl7-version)
            if trace:
                shown = state.body if state.body is not body and state.body is not None \
                    else message.encode()
                stages.append((f"after {label}", shown))

        try:
            # what no step changed leaves as it came, byte for byte (its segment ends, an LF
            # inside a field, a missing final CR are the sender's)
            unchanged = message is received and not message.changed
            transformed = raw if unchanged else message.to_bytes()
            content = transformed if state.body is None else encode(state.body, message.encoding)
            routes = self._route(message, content)
        except Exception as exc:
            return _error(Reason.of("encoding the result failed: ", _short(exc)), message, stages)
        if trace:
            for route in routes:
                text = (f"filtered: {route.filtered}" if route.content is None
                        else route.content.decode(message.encoding or "utf-8", errors="replace"))
                stages.append((f"destination {route.destination}", text))
        return PipelineResult(TRANSFORMED, None, message, transformed, routes, stages)

    def _process_body(self, raw: bytes, stages: list[tuple[str, str]],
                      trace: bool) -> PipelineResult:
        """A JSON, XML, FHIR or text message: the filter and each ``when`` read the body as
        received (``json:``, ``xpath:``); template steps see the parsed body as ``vars.body``
        and its text as ``state.body``."""
        try:
            payload = parse_payload(self._data_type, raw)
        except MessageError as exc:
            return _error(Reason.of(f"not a {self._data_type} message: ", value(exc)), None,
                          stages)
        if self._filter is not None:
            try:
                passed = self._filter.passes(payload.data)
                reason = self._filter.explain(payload.data) if trace or not passed else Reason("")
            except Exception as exc:
                return _error(Reason.of("filter failed: ", _short(exc)), None, stages)
            if not passed:
                if trace:
                    stages.append(("filter", f"filtered: {reason}"))
                return PipelineResult(FILTERED, reason, None, None, [], stages)
            if trace:
                stages.append(("filter", f"passed: {reason}"))
        elif trace:
            stages.append(("filter", "passed: no filter"))
        state = StepState(None, payload.text, {"body": payload.data})  # type: ignore[arg-type]
        for label, step in self._steps:
            try:
                step(state)
            except Exception as exc:
                return _error(Reason.of(f"transform {label} failed: ", _short(exc)), None, stages)
            if trace:
                stages.append((f"after {label}", state.body or ""))
        content = raw if state.body is payload.text else (state.body or "").encode("utf-8")
        try:
            routes = self._route(payload.data, content)
        except Exception as exc:
            return _error(Reason.of("a destination's 'when' failed: ", _short(exc)), None, stages)
        if trace:
            for route in routes:
                stages.append((f"destination {route.destination}",
                               f"filtered: {route.filtered}" if route.content is None
                               else state.body or ""))
        return PipelineResult(TRANSFORMED, None, None, content, routes, stages)

    def _route(self, message: Subject, content: bytes) -> list[Route]:
        routes = []
        for name, when in self._destinations:
            if when is not None and not when.passes(message):
                routes.append(Route(name, None, when.explain(message)))
            else:
                routes.append(Route(name, content, None))
        return routes


def strict_reason(problems: list[str]) -> Reason:
    """The stored reason for a message strict validation refused: the first problem (hl7apy's
    words may quote the data: a value for viewers)."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return Reason.of("strict validation failed: ", value(problems[0]), more)


def _error(reason: Reason, message: Message | None,
           stages: list[tuple[str, str]]) -> PipelineResult:
    if stages:
        stages.append(("error", reason))
    return PipelineResult(ERROR, reason, message, None, [], stages)


def _short(exc: BaseException) -> Reason:
    """``Type: text`` of an exception, cut short (reasons are stored and shown, keep them lean);
    the text may quote the message, so viewers see the type only."""
    text = str(exc) if not isinstance(exc, KeyError) else str(exc.args[0] if exc.args else "")
    if len(text) > _REASON_LIMIT:
        text = text[:_REASON_LIMIT] + "..."
    return Reason.of(type(exc).__name__, ": ", value(text)) if text \
        else Reason(type(exc).__name__)
