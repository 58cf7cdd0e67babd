"""A channel's YAML as a non-admin sees it: secrets written into the file masked.

Channel files should take credentials from the environment (``password: ${PARTNER_PASSWORD}``);
such a placeholder names a variable, not its value, and is shown as written. A literal value
under a key that names a secret (password, token, client_secret, private_key, …), the
password in a URL (``postgresql://user:pw@host``) or a connection string (``Pwd=…;``)
become ``"***"``. Everything else (comments, layout, line numbers) is left as written, so a
masked file reads like the real one.

Admins see the file as written: they are the ones who edit and deploy it.
"""

from __future__ import annotations

import re

import yaml

MASK = "***"
#: A masked value: still YAML (a bare *** would be an alias).
MASKED = '"***"'
#: Keys whose values are secrets: the name, or its last ``_``/``-`` part, is one of these.
_SECRET_KEY = re.compile(
    r"(?:^|[_-])(?:password|passwd|passphrase|secret|token|credentials?"
    r"|(?:api|private|secret|access|signing)_?key)$",
    re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*:)"
                           r"(?P<password>[^@/\s'\"]+)(?=@)")
#: ``Password=…;`` in an ODBC-style connection string.
_PAIR_PASSWORD = re.compile(r"(?P<head>\b(?:password|pwd)=)(?P<password>[^;'\"\s]+)",
                            re.IGNORECASE)
_LINE = re.compile(r"^(?P<head>\s*(?:-\s+)?[\"']?(?P<key>[\w-]+)[\"']?\s*:[ \t]*)(?P<value>\S.*)$",
                   re.MULTILINE)


def secret_key(key: object) -> bool:
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def placeholder(value: str) -> bool:
    """Whether ``value`` is only ``${NAME}`` references (no default, which could be a secret)."""
    return bool(value.strip()) and not _PLACEHOLDER.sub("", value).strip()


def masked(text: str) -> str:
    """``text`` with its literal secrets replaced by ``***`` (see the module docstring)."""
    spans: list[tuple[int, int]] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        text = _LINE.sub(_mask_line, text)  # not YAML: mask what looks like `password: x`
    else:
        if root is not None:
            _collect(root, False, spans, set())
        for start, end in sorted(set(spans), reverse=True):
            # as many line breaks as the value had: the lines below keep their numbers
            text = text[:start] + MASKED + "\n" * text.count("\n", start, end) + text[end:]
    return _PAIR_PASSWORD.sub(_mask_url, _URL_PASSWORD.sub(_mask_url, text))


def _collect(node: yaml.Node, secret: bool, spans: list[tuple[int, int]], seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _collect(value, secret or secret_key(getattr(key, "value", None)), spans, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _collect(item, secret, spans, seen)
    elif isinstance(node, yaml.ScalarNode) and secret and node.value != "" \
            and not placeholder(str(node.value)):
        spans.append((node.start_mark.index, node.end_mark.index))


def _mask_line(match: re.Match[str]) -> str:
    value = match.group("value")
    if not secret_key(match.group("key")) or placeholder(value.strip("'\"")):
        return match.group(0)
    return match.group("head") + MASKED


def _mask_url(match: re.Match[str]) -> str:
    if placeholder(match.group("password")):
        return match.group(0)
    return match.group("head") + MASK
