"""Templates that only place message fields in text render without Jinja's runtime.

Most templates in channels are of this kind: a file path ``out/{{ msg['MSH-10'] }}.hl7``, a
``set`` value ``{{ msg['PID-5.1'] | upper }}``, a body ``{{ msg.text }}``. Rendering them through
Jinja builds a context and a generator per call; under load that was 7-10% of the engine's event
loop. :func:`fast_renderer` recognises such a template from its syntax tree (literal text, and
``msg['PATH']`` / ``msg.text`` / ``msg.control_id`` / ``msg.message_type``, each with any of the
filters ``upper``, ``lower``, ``trim``) and returns a plain function of the message that gives the
same text; anything else (``vars``, tags, other filters) gets None and renders with Jinja.
Literal paths were checked when the template compiled, so reading them cannot fail here.

Bare names (``{{ id }}.json``, a file destination's path: Jinja's runtime took 30 µs of every
delivery) are read from the caller's ``extra`` keyword arguments; a name the caller does not
pass (a Jinja global, or a mistake that must raise) leaves the template to Jinja.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes

from conduit.hl7.message import Message

#: One piece of the output: from the message (None only for a template that reads no field of
#: it) and the caller's ``extra`` names.
Part = Callable[[Message, Mapping[str, Any]], str]

_FILTERS: dict[str, Callable[[str], str]] = {"upper": str.upper, "lower": str.lower,
                                             "trim": str.strip}
_ATTRIBUTES: dict[str, Part] = {
    "text": lambda message, extra: message.encode(),
    "control_id": lambda message, extra: message.control_id,
    "message_type": lambda message, extra: message.message_type,
}
#: Names Jinja finds in every context, never in ``extra``: left to Jinja.
_CONTEXT = frozenset(("msg", "vars"))


class Renderer:
    """A template rendered without Jinja: ``render(message, extra)``, usable when the message
    is there if it ``reads_message`` and ``extra`` has every one of ``names``."""

    __slots__ = ("names", "reads_message", "render")

    def __init__(self, render: Part, names: frozenset[str], reads_message: bool) -> None:
        self.render = render
        self.names = names
        self.reads_message = reads_message


def fast_renderer(tree: nodes.Template) -> Renderer | None:
    """How to render the template ``tree`` without Jinja, or None when it is not one of the
    simple kinds (see the module docstring)."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts: list[str | Part] = []
    names: set[str] = set()
    reads_message = False
    for node in tree.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
            continue
        part = _expression(node, names)
        if part is None:
            return None
        reads_message = reads_message or any(
            _is_msg(name) for name in node.find_all(nodes.Name)) or _is_msg(node)
        parts.append(part)
    if len(parts) == 1 and callable(parts[0]):
        return Renderer(parts[0], frozenset(names), reads_message)
    frozen = tuple(parts)

    def render(message: Message, extra: Mapping[str, Any]) -> str:
        return "".join(part if isinstance(part, str) else part(message, extra)
                       for part in frozen)

    return Renderer(render, frozenset(names), reads_message)


def _expression(node: nodes.Node, names: set[str]) -> Part | None:
    if isinstance(node, nodes.Filter):
        convert = _FILTERS.get(node.name)
        if (convert is None or node.node is None or node.args or node.kwargs
                or node.dyn_args is not None or node.dyn_kwargs is not None):
            return None
        inner = _expression(node.node, names)
        if inner is None:
            return None
        return lambda message, extra: convert(inner(message, extra))
    if isinstance(node, nodes.Getitem) and _is_msg(node.node) and isinstance(
            node.arg, nodes.Const) and isinstance(node.arg.value, str):
        path = node.arg.value
        return lambda message, extra: message.get(path)
    if isinstance(node, nodes.Getattr) and _is_msg(node.node):
        return _ATTRIBUTES.get(node.attr)
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in _CONTEXT:
        name = node.name
        names.add(name)
        return lambda message, extra: str(extra[name])  # Jinja's output of a value: str()
    return None


def _is_msg(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "msg" and node.ctx == "load"
