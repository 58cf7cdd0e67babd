"""Load channel files: YAML → environment interpolation → :class:`Channel`, errors with file:line.

Analysts fix what they can find, so every problem names the file, the line and the key::

    bad.yaml:8: destinations[0].pth: unknown key (did you mean 'path'?)
    bad.yaml:3: source.port: environment variable MLLP_PORT is not set

The YAML is composed into nodes first (PyYAML keeps each node's position), ``${NAME}`` and
``${NAME:-default}`` are filled in from the environment, and pydantic validates the result; each
pydantic error location is then walked back through the nodes to a line. All problems in all
files are collected and raised together as one :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import pydantic
import yaml
from pydantic import BaseModel, Tag
from pydantic_core import ErrorDetails

from conduit.connectors.base import ListenerConfig
from conduit.core.errors import ConfigError
from conduit.core.registry import Registry
from conduit.engine.channel import Channel, channel_model

__all__ = ["channel_files", "load_channel", "load_channel_text", "load_channels", "load_model"]

_ENV_REF = re.compile(r"\$(\$?)\{([^}]*)\}")
_ENV_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.S)
_TEMPLATE_LINE = re.compile(r"^template line (\d+): ")
_LEAF_OPERATORS = ("equals", "in", "matches", "exists")
_GROUPS = ("all", "any", "not")
_READERS = ("field", "json", "xpath")

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class YamlFile:
    """One channel file on its way in: its nodes, and the problems found so far."""

    name: str
    model: type[BaseModel] = BaseModel
    root: yaml.Node | None = None
    found: list[tuple[int, str, str]] = field(default_factory=list)  # line, key path, what
    unreadable: str | None = None

    def problem(self, line: int, where: str, what: str) -> None:
        self.found.append((line, where, what))

    @property
    def problems(self) -> list[str]:
        """Each problem as ``file:line: key: what``, in line order, once."""
        if self.unreadable is not None:
            return [f"{self.name}: {self.unreadable}"]
        ordered = sorted(dict.fromkeys(self.found), key=lambda p: p[0])
        return [f"{self.name}:{line}: {where}: {what}" if where else f"{self.name}:{line}: {what}"
                for line, where, what in ordered]


def load_channel(path: str | Path, env: Mapping[str, str] | None = None, *,
                 registry: Registry | None = None) -> Channel:
    """Load one channel file; ConfigError listing every problem, each with file:line.

    The kinds a file may name are ``registry``'s (default: every built-in component).
    """
    channel, file = _load(Path(path), os.environ if env is None else env, registry)
    if channel is None:
        raise ConfigError(file.problems)
    return channel


def load_channels(paths: Iterable[str | Path], env: Mapping[str, str] | None = None, *,
                  registry: Registry | None = None) -> list[Channel]:
    """Load files and directories (their ``*.yaml``/``*.yml``, not ``*.test.yaml``) as one set.

    Besides each file's own problems, two channels may not share a name, nor two enabled ones a
    source port.
    """
    environment = os.environ if env is None else env
    problems: list[str] = []
    loaded: list[tuple[Channel, YamlFile]] = []
    for path in channel_files(paths, problems):
        channel, file = _load(path, environment, registry)
        problems.extend(file.problems)
        if channel is not None:
            loaded.append((channel, file))
    problems.extend(_clashes(loaded))
    if problems:
        raise ConfigError(problems)
    return [channel for channel, _ in loaded]


def channel_files(paths: Iterable[str | Path], problems: list[str] | None = None) -> list[Path]:
    """The channel files named by ``paths``: files as given, directories expanded (sorted)."""
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir()
                                if p.suffix in (".yaml", ".yml") and not _is_test_file(p)))
        elif path.exists() or problems is None:
            found.append(path)
        else:
            problems.append(f"{path}: no such file or directory")
    return found


def _is_test_file(path: Path) -> bool:
    return path.name.endswith((".test.yaml", ".test.yml"))


# --- one file --------------------------------------------------------------------------------

def _load(path: Path, env: Mapping[str, str], registry: Registry | None
          ) -> tuple[Channel | None, YamlFile]:
    channel, file = load_model(path, channel_model(registry), env)
    if channel is not None:
        channel._path = str(path)
    return channel, file


def load_model(path: Path, model: type[M], env: Mapping[str, str]) -> tuple[M | None, YamlFile]:
    """Any YAML file into ``model`` the same way (channel tests use it too).

    The model is validated with ``context={"base_dir": <the file's folder>}``; answers the
    instance (None if there were problems) and the file record holding the problems.
    """
    file = YamlFile(str(path), model)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        file.unreadable = f"cannot read: {getattr(exc, 'strerror', None) or exc}"
        return None, file
    return _validate_text(text, file, model, env, path.parent)


def load_channel_text(text: str, name: str, base_dir: Path,
                      env: Mapping[str, str] | None = None, *,
                      registry: Registry | None = None) -> Channel:
    """A channel from YAML text not in a file (edited in the browser), checked exactly as a
    file is; ``name`` labels its problems (``name:line: key: what``) and ``base_dir`` is where
    its relative paths (templates, lookup tables) are read from."""
    model = channel_model(registry)
    channel, file = _validate_text(text, YamlFile(name, model), model,
                                   os.environ if env is None else env, base_dir)
    if channel is None:
        raise ConfigError(file.problems)
    return channel


def _validate_text(text: str, file: YamlFile, model: type[M], env: Mapping[str, str],
                   base_dir: Path) -> tuple[M | None, YamlFile]:
    data = _parse_yaml(text, file, env)
    if data is None:
        return None, file
    early = list(file.found)  # environment problems: validate anyway, to report everything
    try:
        loaded = model.model_validate(data, context={"base_dir": base_dir})
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            _report(error, file)
    else:
        if not early:
            return loaded, file
    # a variable left empty may fail validation again: say it once
    taken = {(line, where) for line, where, _ in early}
    file.found = early + [p for p in file.found[len(early):]
                          if p[:2] not in taken or p[2].startswith("unknown")]
    return None, file


def _parse_yaml(text: str, file: YamlFile, env: Mapping[str, str]) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            file.problem(1, "", f"the file is empty: expected {_keys_of(file.model)}")
            return None
        if not isinstance(root, yaml.MappingNode):
            file.problem(_line(root), "", f"expected a mapping: {_keys_of(file.model)}")
            return None
        file.root = root
        _prepare(root, (), file, env, set())
        if any("duplicate key" in what for _, _, what in file.found):
            return None
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        file.problem(line, "", f"YAML syntax: {what}")
        return None
    except yaml.YAMLError as exc:
        file.problem(1, "", f"YAML: {exc}")
        return None
    finally:
        loader.dispose()


def _prepare(node: yaml.Node, loc: Loc, file: YamlFile, env: Mapping[str, str],
             seen: set[int]) -> None:
    """Fill in ``${...}`` in string scalars and catch duplicate keys, walking every node once."""
    if id(node) in seen:  # an alias: already done where its anchor is
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            here = (*loc, key)
            if key in first:
                file.problem(_line(key_node), _show(here),
                             f"duplicate key (first given on line {first[key]})")
            first.setdefault(key, _line(key_node))
            _prepare(value_node, here, file, env, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _prepare(item, (*loc, i), file, env, seen)
    elif (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str"
          and "${" in node.value):
        node.value = _interpolate(node.value, env, lambda what: file.problem(
            _line(node), _show(loc), what))


def _interpolate(text: str, env: Mapping[str, str], problem: Any) -> str:
    """``${NAME}``, ``${NAME:-default}`` from ``env``; ``$${`` writes a literal ``${``."""

    def fill(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        ref = _ENV_NAME.match(match.group(2))
        if ref is None:
            problem(f"'${{{match.group(2)}}}' is not a variable reference like ${{NAME}} "
                    f"or ${{NAME:-default}} (write $${{ for a literal '${{')")
            return ""
        name, default = ref.group(1), ref.group(2)
        value = env.get(name)
        if value:
            return value
        if default is not None:
            return default
        problem(f"environment variable {name} is not set "
                f"(or give a default: ${{{name}:-value}})")
        return ""

    return _ENV_REF.sub(fill, text)


# --- pydantic errors → file:line: key: message ------------------------------------------------

def _report(error: ErrorDetails, file: YamlFile) -> None:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if kind in ("source_type", "destination_type"):
        what, choices = kind.split("_")[0], error["msg"].split(":", 1)[-1].strip()
        if isinstance(value, dict) and "type" in value:
            message = _unknown(str(value["type"]), error["msg"], f"{what} type")
            loc = (*loc, "type")
        else:
            typo = [k for k in value if difflib.get_close_matches(str(k), ["type"], cutoff=0.6)
                    ] if isinstance(value, dict) else []
            loc, message = ((*loc, typo[0]), "unknown key (did you mean 'type'?)") if typo else (
                (*loc, "type"), f"is required; one of: {choices}")
    elif kind == "data_type":  # the channel's own rules, each with its key path
        for where, what in (error.get("ctx") or {}).get("problems", ()):
            file.problem(_locate(file.root, tuple(where))[0], _show(tuple(where)), what)
        return
    elif kind == "step":
        loc, message = _step_problem(loc, value, error["msg"])
    elif kind == "condition":
        loc, message = _condition_problem(loc, value)
    elif kind == "extra_forbidden":
        message = _unknown(str(loc[-1]), "", "key", _allowed_keys(file.model, loc[:-1]))
    elif kind == "missing":
        message = "is required but missing"
    elif kind == "literal_error":
        expected = str((error.get("ctx") or {}).get("expected", ""))
        allowed = re.findall(r"'([^']*)'", expected)
        message = _unknown(str(value), f": {', '.join(allowed)}", "value", allowed)
    elif kind == "string_pattern_mismatch" and loc == ("name",):
        message = (f"{value!r} is not a channel name: use lower case letters, digits, '-' and "
                   f"'_', starting with a letter or digit")
    else:
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    line, shown, node = _locate(file.root, loc)
    match = _TEMPLATE_LINE.match(message)
    if match and isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        line = node.start_mark.line + 1 + int(match.group(1))
    file.problem(line, shown, message)


def _unknown(given: str, expected: str, what: str, allowed: Iterable[str] = ()) -> str:
    choices = list(allowed)
    if not choices and ":" in expected:
        choices = [c.strip() for c in expected.split(":", 1)[1].split(",")]
    message = f"unknown {what} {given!r}" if what != "key" else "unknown key"
    close = difflib.get_close_matches(given, choices, n=1, cutoff=0.6)
    if close:
        return f"{message} (did you mean {close[0]!r}?)"
    if choices:
        return f"{message}; expected one of: {', '.join(choices)}"
    return message


def _step_problem(loc: Loc, value: Any, expected: str) -> tuple[Loc, str]:
    kinds = [k.strip() for k in expected.split(":", 1)[-1].split(",")]
    if not isinstance(value, dict):
        return loc, f"a step is a one-key mapping such as {{set: {{field: PID-5.1, value: X}}}}; " \
                    f"steps: {', '.join(kinds)}"
    if len(value) != 1:
        keys = ", ".join(map(str, value)) or "none"
        return loc, f"a step has exactly one key naming its kind (found: {keys}); " \
                    f"put each step in its own list item"
    (key,) = value
    return (*loc, key), _unknown(str(key), "", "step", kinds)


def _condition_problem(loc: Loc, value: Any) -> tuple[Loc, str]:
    if not isinstance(value, dict):
        return loc, "a condition is a mapping: {field: PATH, equals: X} or all/any/not"
    groups = [k for k in _GROUPS if k in value]
    operators = [k for k in _LEAF_OPERATORS if k in value]
    if len(groups) + len(operators) > 1:
        return loc, (f"give one operator per condition (found: {', '.join(groups + operators)}); "
                     f"combine several with all: or any:")
    unknown = [str(k) for k in value
               if k not in (*_READERS, "namespaces", *_GROUPS, *_LEAF_OPERATORS)]
    for key in unknown:
        close = difflib.get_close_matches(key, [*_LEAF_OPERATORS, *_GROUPS, *_READERS], n=1,
                                          cutoff=0.6)
        if close:
            return (*loc, key), f"unknown key (did you mean {close[0]!r}?)"
    if any(key in value for key in _READERS):
        return loc, f"a test needs one operator: {', '.join(_LEAF_OPERATORS)}"
    return loc, ("a condition needs 'field' (HL7 v2), 'json' or 'xpath' with one of equals, "
                 "in, matches, exists (or all/any/not)")


def _locate(root: yaml.Node | None, loc: Loc) -> tuple[int, str, yaml.Node | None]:
    """The line, the shown key path and the node a pydantic location points at.

    Union tags (``@mllp``) are skipped; so is any other label pydantic puts in a location that
    the YAML does not have (union member names), except a last one (a missing key).
    """
    node = root
    line = 1
    shown: list[str | int] = []
    for i, step in enumerate(loc):
        if isinstance(step, str) and step.startswith("@"):
            continue
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(step)), None)
            if match is not None:
                line, node = _line(match[0]), match[1]
                shown.append(step)
                continue
            if i == len(loc) - 1:
                shown.append(step)
            continue
        if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = _line(node)
            shown.append(step)
    return line, _show(tuple(shown)), node


def _show(loc: Loc) -> str:
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _keys_of(model: type[BaseModel]) -> str:
    required = [f.alias or n for n, f in model.model_fields.items() if f.is_required()]
    return ", ".join(f"{k}:" for k in required) or "a mapping"


def _allowed_keys(root: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the model at ``loc`` accepts, for 'did you mean' (walks the type annotations)."""
    current: Any = root
    for step in loc:
        current = _unwrap(current)
        if isinstance(step, str) and step.startswith("@"):
            current = _tagged(current, step)
        elif isinstance(step, int):
            args = get_args(current)
            current = args[0] if get_origin(current) is list and args else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            found = next((f for name, f in current.model_fields.items()
                          if (f.alias or name) == step), None)
            current = found.annotation if found is not None else None
        else:
            current = None
        if current is None:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [a for a in get_args(annotation) if a is not NoneType]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _tagged(union: Any, tag: str) -> Any:
    for member in get_args(union):
        if get_origin(member) is Annotated:
            model, *metadata = get_args(member)
            if any(isinstance(m, Tag) and m.tag == tag for m in metadata):
                return model
    return None


# --- across files ----------------------------------------------------------------------------

def _clashes(loaded: list[tuple[Channel, YamlFile]]) -> list[str]:
    problems: list[str] = []
    names: dict[str, str] = {}
    ports: dict[int, str] = {}
    for channel, file in loaded:
        if channel.name in names:
            line, _, _ = _locate(file.root, ("name",))
            problems.append(f"{file.name}:{line}: name: channel name {channel.name!r} is also "
                            f"used by {names[channel.name]}")
        names.setdefault(channel.name, file.name)
        port = channel.source.port if isinstance(channel.source, ListenerConfig) else 0
        if port > 0 and channel.enabled:  # a disabled channel never listens
            if port in ports:
                line, _, _ = _locate(file.root, ("source", "port"))
                problems.append(f"{file.name}:{line}: source.port: port {port} is also used by "
                                f"{ports[port]}")
            ports.setdefault(port, f"channel {channel.name!r} ({file.name})")
    return problems
