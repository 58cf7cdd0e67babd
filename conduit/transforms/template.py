"""The one Jinja2 environment of Conduit, and :class:`MessageView` for ``msg['PID-5.1']``.

HL7 v2 separates segments with ``\\r``; Jinja2 by default rewrites every line ending to ``\\n``
and drops the trailing newline, which corrupts a message. Here every template is built by
:func:`environment`: sandboxed (a template is data from a YAML file, not code), with
``newline_sequence="\\r"`` and ``keep_trailing_newline=True`` so a body written on several YAML
lines comes out as ``\\r``-separated segments, byte for byte; ``StrictUndefined`` so a typo fails
loudly instead of rendering an empty string; no autoescape (the output is HL7, JSON or a path,
never HTML).

Templates compile once, when the channel loads (:func:`check_template` is the pydantic hook),
and paths written literally as ``msg['...']`` are checked then too.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any

import jinja2
import jinja2.runtime
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AfterValidator

from conduit.hl7.escape import escape, unescape
from conduit.hl7.message import Message, Separators
from conduit.hl7.path import check_path
from conduit.transforms.template_fast import Renderer, fast_renderer


def environment() -> SandboxedEnvironment:
    """A new environment with Conduit's settings: sandboxed, ``\\r`` line ends, strict."""
    env = SandboxedEnvironment(
        newline_sequence="\r",
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters["hl7_escape"] = _hl7_escape
    env.filters["hl7_unescape"] = _hl7_unescape
    from conduit.transforms.template_filters import register  # dates and code systems

    register(env)
    return env


def _message_in(context: jinja2.runtime.Context) -> Message | None:
    view = context.get("msg")
    return view._message if isinstance(view, MessageView) else None


@jinja2.pass_context
def _hl7_escape(context: jinja2.runtime.Context, value: object) -> str:
    """``{{ vars.note | hl7_escape }}``: delimiters become escape sequences (the message's own)."""
    message = _message_in(context)
    return escape(str(value), message.separators if message else Separators())


@jinja2.pass_context
def _hl7_unescape(context: jinja2.runtime.Context, value: object) -> str:
    """``{{ msg['NTE-3'] | hl7_unescape }}``: the human text, e.g. for a JSON body."""
    message = _message_in(context)
    if message is None:
        return unescape(str(value), Separators())
    return unescape(str(value), message.separators, charset=message.encoding)


class MessageView:
    """A read-only view of a message for templates: ``msg['PID-5.1']``, ``msg.get('PID-3[2].1')``.

    Reading a path the message lacks gives ``""``, as in filters. Templates cannot change the
    message through it; transform steps do that.
    """

    __slots__ = ("_message",)

    def __init__(self, message: Message) -> None:
        self._message = message

    def __getitem__(self, path: str) -> str:
        try:
            return self._message.get(path)
        except ValueError as exc:  # a bad path: Jinja makes a LookupError an undefined value
            raise LookupError(str(exc)) from None

    def get(self, path: str, default: str = "") -> str:
        """The raw text at ``path``, or ``default`` when it is empty or absent."""
        return self._message.get(path, default)

    def repetitions(self, path: str) -> list[str]:
        """Every repetition of a field, e.g. ``{% for id in msg.repetitions('PID-3') %}``."""
        return self._message.repetitions(path)

    def count(self, segment: str) -> int:
        """How many ``segment`` segments the message has (``msg.count('OBX')``)."""
        return len(self._message.segments(segment))

    @property
    def control_id(self) -> str:
        return self._message.control_id

    @property
    def message_type(self) -> str:
        return self._message.message_type

    @property
    def text(self) -> str:
        """The whole message, ``\\r``-separated."""
        return self._message.encode()

    def __str__(self) -> str:
        return self._message.encode()


_ENV = environment()


class TemplateProblem(ValueError):
    """A template that cannot compile, or that names a bad field path."""


@lru_cache(maxsize=4096)
def compile_template(source: str) -> jinja2.Template:
    """Compile ``source`` once (cached by text); TemplateProblem with the template line if bad."""
    try:
        tree = _ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"template line {exc.lineno}: syntax error: {exc.message}") from None
    for path, lineno in _literal_paths(tree):
        try:
            check_path(path)
        except ValueError as exc:
            raise TemplateProblem(f"template line {lineno}: {exc}") from None
    _check_names(tree)
    try:
        template = _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:  # what the compiler refuses beyond the parser
        raise TemplateProblem(
            f"template line {exc.lineno}: {exc.message or 'cannot compile'}") from None
    template._conduit_fast = fast_renderer(tree)  # type: ignore[attr-defined]
    return template


def _check_names(tree: nodes.Template) -> None:
    """Every filter and test a template names exists: Jinja2 would only find some of them at
    render time (those inside ``{% if %}``), i.e. on a patient's message instead of at load."""
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        known = _ENV.filters if isinstance(node, nodes.Filter) else _ENV.tests
        if node.name not in known:
            what = "filter" if isinstance(node, nodes.Filter) else "test"
            close = difflib.get_close_matches(node.name, list(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TemplateProblem(
                f"template line {node.lineno}: no {what} named {node.name!r}{hint}")


def _literal_paths(tree: nodes.Template) -> list[tuple[str, int]]:
    """Paths written literally as ``msg['X']`` or ``msg.get('X')`` in a template."""
    found: list[tuple[str, int]] = []
    for item in tree.find_all(nodes.Getitem):
        key = item.arg
        if _is_msg(item.node) and isinstance(key, nodes.Const) and isinstance(key.value, str):
            found.append((key.value, item.lineno))
    for call in tree.find_all(nodes.Call):
        target = call.node
        if (isinstance(target, nodes.Getattr) and target.attr == "get" and _is_msg(target.node)
                and call.args and isinstance(call.args[0], nodes.Const)
                and isinstance(call.args[0].value, str)):
            found.append((call.args[0].value, call.lineno))
    return found


def _is_msg(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "msg"


def check_template(source: str) -> str:
    """Pydantic hook: ``source`` if it compiles, else ValueError (shown with file:line)."""
    compile_template(source)
    return source


TemplateText = Annotated[str, AfterValidator(check_template)]
"""A string field holding a Jinja2 template, compiled and checked at load."""


def is_template(text: str) -> bool:
    """True when ``text`` has Jinja2 markup; plain text needs no rendering."""
    return "{{" in text or "{%" in text or "{#" in text


def render_template(template: jinja2.Template | str, message: Message | None = None,
                    variables: Mapping[str, Any] | None = None, **extra: Any) -> str:
    """Render with ``msg`` (a :class:`MessageView`) and ``vars`` in scope.

    Raises what Jinja2 raises (UndefinedError, SecurityError, ...); callers map that to a step
    or delivery error.
    """
    if isinstance(template, str):
        template = compile_template(template)
    fast: Renderer | None = getattr(template, "_conduit_fast", None)
    if fast is not None and (message is not None or not fast.reads_message) and (
            not fast.names or fast.names.issubset(extra)):
        # only message fields and the caller's names in text: no Jinja runtime (template_fast)
        return fast.render(message, extra)  # type: ignore[arg-type]  # None: msg not read
    context: dict[str, Any] = {**_globals_of(template), "vars": dict(variables or {}), **extra}
    if message is not None:
        context["msg"] = MessageView(message)
    # Template.render() without its per-call costs: it merges the globals (a ChainMap, walked
    # key by key) into every context; here they were flattened once per template. Half of a
    # 30 µs render went there.
    environment = template.environment
    try:
        return environment.concat(
            template.root_render_func(environment.context_class(
                environment, context, template.name, template.blocks)))
    except Exception:
        environment.handle_exception()
        raise  # not reached: handle_exception re-raises with the template's traceback


def _globals_of(template: jinja2.Template) -> dict[str, Any]:
    """The template's globals as one flat dict, computed once per template."""
    flat: dict[str, Any] | None = getattr(template, "_conduit_globals", None)
    if flat is None:
        flat = dict(template.globals)
        template._conduit_globals = flat  # type: ignore[attr-defined]
    return flat
