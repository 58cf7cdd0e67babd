"""Reasons and errors that may quote message data, with the form a viewer may see.

A FILTERED message's reason (``PID-5.1 is 'smith', expected 'ADT'``), a transform's error or a
receiver's answer can hold patient data. Operators see it whole (and that view is audited);
viewers see the same sentence with every value hidden (``PID-5.1 is …, expected 'ADT'``). So a
reason is made once, where its parts are known, as a :class:`Reason`: its text is the whole
sentence (what a sender is answered, what an operator reads) and ``public`` the viewer's form.

The store keeps both in the one ``error`` column (:func:`stored`, :func:`loaded`). Text stored
any other way (plain strings, rows older than this module) reads back *withheld* for viewers:
a viewer sees less rather than a value.
"""

from __future__ import annotations

HIDDEN = "…"
"""What a viewer sees in place of a value."""

WITHHELD = "(details for operators)"
"""What a viewer sees of a text not made as a :class:`Reason`: it may hold anything."""

_MARK = "\ue000"  # a private-use character: opens a stored reason and ends its public part


class Value(str):
    """A part of a reason that comes from a message (or a receiver): hidden from viewers."""

    __slots__ = ()


class Reason(str):
    """A reason's whole text (the ``str`` itself) and ``public``: the same without values."""

    public: str

    def __new__(cls, text: str, public: str | None = None) -> Reason:
        """``public`` None: the text holds no value (a sentence of Conduit's own)."""
        made = super().__new__(cls, text)
        made.public = str(text) if public is None else public
        return made

    @classmethod
    def of(cls, *parts: str) -> Reason:
        """Join parts: :class:`Value` parts are hidden from viewers, a :class:`Reason` part
        gives its own public form, plain text is shown as it is (write no values in it)."""
        return cls("".join(parts), "".join(_public(p) for p in parts))

    def __reduce__(self) -> tuple[type[Reason], tuple[str, str]]:
        return (Reason, (str(self), self.public))


def value(text: object) -> Value:
    """Mark ``text`` (message data) as a value."""
    return Value(text)


def _public(part: str) -> str:
    if isinstance(part, Value):
        return HIDDEN
    if isinstance(part, Reason):
        return part.public
    return str(part)


def public(text: str | None) -> str | None:
    """What a viewer may see of a reason: its public form; of any other text, nothing of it."""
    if text is None or text == "":
        return text
    return text.public if isinstance(text, Reason) else WITHHELD


def failure(exc: BaseException) -> Reason:
    """An exception as a reason: its type for viewers, its text (it may quote data) too for
    operators; an exception raised with a :class:`Reason` gives that reason."""
    if exc.args and isinstance(exc.args[0], Reason) and len(exc.args) == 1:
        return exc.args[0]
    text = str(exc)
    name = type(exc).__name__
    return Reason.of(name, ": ", value(text)) if text else Reason(name)


def _clean(text: str) -> str:
    return text.replace(_MARK, "\ufffd")


def stored(text: str | None) -> str | None:
    """The store's form of a reason: ``MARK public MARK whole`` (``MARK public MARK`` when the
    two are the same); any other text as it is, which reads back withheld for viewers."""
    if text is None:
        return None
    if not isinstance(text, Reason):
        return _clean(text)
    whole = _clean(str(text))
    shown = _clean(text.public)
    return _MARK + shown + _MARK + ("" if whole == shown else whole)


def stored_prefix(text: str) -> str:
    """How the stored form of a value-free reason beginning with ``text`` begins (to find
    such reasons with a prefix search)."""
    return _MARK + _clean(text)


def loaded(text: str | None) -> Reason | None:
    """A stored reason as a :class:`Reason` (inverse of :func:`stored`)."""
    if text is None:
        return None
    if isinstance(text, Reason):
        return text
    if text.startswith(_MARK) and _MARK in text[1:]:
        shown, _, whole = text[1:].partition(_MARK)
        return Reason(whole or shown, shown)
    return Reason(text, WITHHELD)
