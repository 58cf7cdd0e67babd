"""Templates that only place message fields in text render without Jinja's runtime.

Most templates in channels are of this kind: a file path ``out/{{ msg['MSH-10'] }}.hl7``, a
``set`` value ``{{ msg['PID-5.1'] | upper }}``, a body ``{{ msg.text }}``. Rendering them through
Jinja builds a context and a generator per call; under load that was 7-10% of the engine's event
loop. :func:`fast_renderer` recognises such a template from its syntax tree (literal text, and
``msg['PATH']`` / ``msg.text`` / ``msg.control_id`` / ``msg.message_type``, each with any of the
filters ``upper``, ``lower``, ``trim``) and returns a plain function of the message that gives the
same text; anything else (variables, tags, other filters) gets None and renders with Jinja.
Literal paths were checked when the template compiled, so reading them cannot fail here.
"""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import nodes

from conduit.hl7.message import Message

Renderer = Callable[[Message], str]
Part = Callable[[Message], str]

_FILTERS: dict[str, Callable[[str], str]] = {"upper": str.upper, "lower": str.lower,
                                             "trim": str.strip}
_ATTRIBUTES: dict[str, Part] = {
    "text": Message.encode,
    "control_id": lambda message: message.control_id,
    "message_type": lambda message: message.message_type,
}


def fast_renderer(tree: nodes.Template) -> Renderer | None:
    """A function rendering the template ``tree`` for a message, or None when it is not one
    of the simple kinds (see the module docstring)."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts: list[str | Part] = []
    for node in tree.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
            continue
        part = _expression(node)
        if part is None:
            return None
        parts.append(part)
    if len(parts) == 1 and callable(parts[0]):
        return parts[0]
    frozen = tuple(parts)

    def render(message: Message) -> str:
        return "".join(part if isinstance(part, str) else part(message) for part in frozen)

    return render


def _expression(node: nodes.Node) -> Part | None:
    if isinstance(node, nodes.Filter):
        convert = _FILTERS.get(node.name)
        if (convert is None or node.node is None or node.args or node.kwargs
                or node.dyn_args is not None or node.dyn_kwargs is not None):
            return None
        inner = _expression(node.node)
        if inner is None:
            return None
        return lambda message: convert(inner(message))
    if isinstance(node, nodes.Getitem) and _is_msg(node.node) and isinstance(
            node.arg, nodes.Const) and isinstance(node.arg.value, str):
        path = node.arg.value
        return lambda message: message.get(path)
    if isinstance(node, nodes.Getattr) and _is_msg(node.node):
        return _ATTRIBUTES.get(node.attr)
    return None


def _is_msg(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "msg" and node.ctx == "load"
