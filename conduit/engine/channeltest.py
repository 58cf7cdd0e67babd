"""Channel tests: ``<name>.test.yaml`` beside ``<name>.yaml``, run by ``conduit test`` and pytest.

A channel carries its own tests, so a change to a filter or a step shows its effect in review::

    tests:
      - name: admits are archived upper-cased
        message: ../examples/messages/adt_a01.hl7   # or inline text (any line endings)
        expect:
          filtered: false
          destinations:
            archive: {contains: ["PID|1||"], fields: {PID-5.1: DOE}}
            downstream: {filtered: true}

Messages run through the channel's :class:`~conduit.engine.pipeline.Pipeline` only: nothing is
sent and nothing is stored. Comparisons of whole contents ignore the kind of line ending (files
in git often get ``\\n``), everything else compares raw text.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from conduit.connectors.base import ConnectorContext
from conduit.core.errors import ConfigError
from conduit.core.protocols import Outbound
from conduit.engine.channel import Channel
from conduit.engine.loader import load_channel, load_model
from conduit.engine.pipeline import Pipeline, PipelineResult
from conduit.hl7.message import Message
from conduit.hl7.pathtext import PathText

TEST_SUFFIX = ".test.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DestinationExpect(_Strict):
    """What one destination should (or should not) get."""

    filtered: bool | None = Field(
        default=None, description="true: the destination's when-filter stops the message.")
    contains: list[str] = Field(default_factory=list, description="Texts the content must hold.")
    not_contains: list[str] = Field(default_factory=list,
                                    description="Texts the content must not hold.")
    equals: str | None = Field(default=None,
                               description="The whole content (line endings ignored).")
    equals_file: str | None = Field(
        default=None, description="A file holding the whole content, relative to the test file.")
    fields: dict[PathText, str] = Field(
        default_factory=dict, description="Field values in the content, read as HL7 v2.")
    path_ends_with: str | None = Field(
        default=None, description="The end of the file path the destination would write "
                                  "(its rendered path template), e.g. out/MSG00001.hl7.")


class Expect(_Strict):
    """What should become of the message."""

    status: Literal["FILTERED", "TRANSFORMED", "ERROR"] | None = Field(
        default=None, description="The pipeline's status for the message.")
    filtered: bool | None = Field(default=None,
                                  description="true: the channel's filter stops it.")
    reason: str | None = Field(default=None,
                               description="Text the filter or error reason must hold.")
    fields: dict[PathText, str] = Field(
        default_factory=dict, description="Field values of the message after all steps.")
    destinations: dict[str, DestinationExpect] = Field(
        default_factory=dict, description="Expectations per destination name.")


class Case(_Strict):
    """One message and what should happen to it."""

    name: str = Field(description="Says what the case shows.")
    message: str = Field(description="A message file (relative to the test file) or the "
                                     "message text itself (segments on lines).")
    expect: Expect = Field(default_factory=Expect)

    @field_validator("message")
    @classmethod
    def _readable(cls, value: str, info: ValidationInfo) -> str:
        if _is_inline(value):
            return value
        path = _base(info) / value
        if not path.is_file():
            raise ValueError(f"message file {str(path)!r} not found")
        return value


class TestFile(_Strict):
    """A ``*.test.yaml``: the cases for one channel."""

    __test__ = False  # not a pytest class

    channel: str | None = Field(
        default=None, description="The channel file, relative to this one (default: the file named "
                          "like this one without '.test').")
    tests: list[Case] = Field(min_length=1, description="The cases, run in order.")


def _is_inline(text: str) -> bool:
    return "\n" in text or "\r" in text or text.lstrip().startswith("MSH")


def _base(info: ValidationInfo) -> Path:
    context = info.context if isinstance(info.context, dict) else {}
    return Path(context.get("base_dir") or ".")


@dataclass
class CaseResult:
    """The outcome of one case; ``failures`` says what did not hold, with diffs."""

    file: str
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class TestReport:
    """All cases run, and problems that stopped files from running at all."""

    __test__ = False

    cases: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and all(c.passed for c in self.cases)


def find_test_files(paths: Iterable[str | Path]) -> list[Path]:
    """Test files named by ``paths``: folders searched recursively, channel files mapped to
    their ``.test.yaml``, test files as given."""
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(path.rglob(f"*{TEST_SUFFIX}")))
        elif path.name.endswith(TEST_SUFFIX):
            found.append(path)
        else:
            found.append(path.with_name(path.name.rsplit(".", 1)[0] + TEST_SUFFIX))
    return found


def run_tests(paths: Iterable[str | Path], env: Mapping[str, str] | None = None) -> TestReport:
    """Run every test file named by ``paths``."""
    report = TestReport()
    files = find_test_files(paths)
    if not files:
        report.problems.append("no channel tests found (*.test.yaml)")
    for path in files:
        run_test_file(path, report, env)
    return report


def run_test_file(path: Path, report: TestReport, env: Mapping[str, str] | None = None) -> None:
    """Run one test file's cases into ``report``."""
    environment = os.environ if env is None else env
    if not path.is_file():
        report.problems.append(f"{path}: no such test file")
        return
    spec, file = load_model(path, TestFile, environment)
    if spec is None:
        report.problems.extend(file.problems)
        return
    channel_path = path.parent / (spec.channel or path.name[: -len(TEST_SUFFIX)] + ".yaml")
    try:
        channel = load_channel(channel_path, environment)
    except ConfigError as exc:
        report.problems.extend(exc.problems)
        return
    pipeline, paths = Pipeline(channel), DestinationPaths(channel, environment)
    for case in spec.tests:
        raw = _message_bytes(case.message, path.parent)
        result = pipeline.process(raw)
        report.cases.append(CaseResult(str(path), case.name,
                                       check(case.expect, result, path.parent, paths)))


class DestinationPaths:
    """The paths a channel's file-writing destinations would write a result to, rendered as the
    engine renders them, so a path template that fails on a message fails its test instead of
    the delivery. Only destinations that render a target (``target(out)``) are built; nothing
    is written."""

    def __init__(self, channel: Channel, env: Mapping[str, str] | None = None) -> None:
        environment = os.environ if env is None else env
        context = ConnectorContext(channel.name,
                                   Path(environment.get("CONDUIT_DATA_DIR") or "data"))
        registry = channel.registry
        self._channel = channel.name
        self._targets = {
            d.name: registry.build_destination(d, context) for d in channel.destinations
            if callable(getattr(registry.destinations[d.type].factory, "target", None))}

    def render(self, result: PipelineResult) -> dict[str, tuple[str | None, str | None]]:
        """Per routed destination that writes files: ``(path, None)`` or ``(None, error)``."""
        rendered: dict[str, tuple[str | None, str | None]] = {}
        for route in result.routes:
            target = self._targets.get(route.destination)
            if target is None or route.content is None:
                continue
            out = Outbound(0, self._channel, route.destination, route.content,
                           message=result.message)
            try:
                rendered[route.destination] = (target.target(out), None)  # type: ignore[attr-defined]
            except Exception as exc:
                rendered[route.destination] = (None, str(exc))
        return rendered


def _message_bytes(message: str, base: Path) -> bytes:
    if _is_inline(message):
        return _segments(message).encode("utf-8")
    return (base / message).read_bytes()


def _segments(text: str) -> str:
    """Line endings of any kind as HL7's ``\\r``, with one at the end."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n").split("\n")
    return "\r".join(lines) + "\r"


def check(expect: Expect, result: PipelineResult, base: Path,
          paths: DestinationPaths | None = None) -> list[str]:
    """What in ``expect`` does not hold for ``result`` (empty: the case passes); with
    ``paths``, also every destination path that does not render."""
    failures: list[str] = []
    rendered = paths.render(result) if paths is not None else {}
    for name, (_, error) in rendered.items():
        if error is not None:
            failures.append(f"destination {name}: {error}")
    if expect.status is not None and result.status != expect.status:
        failures.append(f"status is {result.status}, expected {expect.status}"
                        + (f" ({result.reason})" if result.reason else ""))
    if expect.filtered is True and result.status != "FILTERED":
        failures.append(f"expected the channel filter to stop it; status is {result.status}"
                        + (f" ({result.reason})" if result.reason else ""))
    if expect.filtered is False and result.status != "TRANSFORMED":
        failures.append(f"the channel filter stopped it: {result.reason}"
                        if result.status == "FILTERED"
                        else f"expected it to pass; status is {result.status} ({result.reason})")
    if expect.reason is not None and expect.reason not in (result.reason or ""):
        failures.append(f"reason {result.reason!r} does not contain {expect.reason!r}")
    if expect.fields:
        if result.message is None:
            failures.append(f"no message to read fields from (status {result.status}: "
                            f"{result.reason})")
        else:
            failures.extend(_field_failures("message", expect.fields, result.message))
    routes = {route.destination: route for route in result.routes}
    for name, wanted in expect.destinations.items():
        if result.status != "TRANSFORMED":
            failures.append(f"destination {name}: nothing routed (status {result.status}: "
                            f"{result.reason})")
            continue
        route = routes.get(name)
        if route is None:
            failures.append(f"destination {name}: the channel has no such destination "
                            f"(it has: {', '.join(routes)})")
            continue
        failures.extend(_destination_failures(name, wanted, route.content, route.filtered, base))
        if wanted.path_ends_with is not None:
            written = rendered.get(name, (None, None))[0]
            if written is None or not written.endswith(wanted.path_ends_with):
                failures.append(f"destination {name}: path is {written!r}, expected it to end "
                                f"with {wanted.path_ends_with!r}")
    return failures


def _destination_failures(name: str, wanted: DestinationExpect, content: bytes | None,
                          filtered: str | None, base: Path) -> list[str]:
    failures: list[str] = []
    if wanted.filtered is not None and (filtered is not None) != wanted.filtered:
        failures.append(f"destination {name}: its when-filter stopped it: {filtered}"
                        if filtered is not None
                        else f"destination {name}: expected its when-filter to stop it")
    if content is None:
        if _wants_content(wanted):
            failures.append(f"destination {name}: got nothing (filtered: {filtered})")
        return failures
    text = content.decode("utf-8", errors="replace")
    shown = _readable(text)
    for piece in wanted.contains:
        if piece not in text:
            failures.append(f"destination {name}: does not contain {piece!r}; it got:\n{shown}")
    for piece in wanted.not_contains:
        if piece in text:
            failures.append(f"destination {name}: contains {piece!r}; it got:\n{shown}")
    expected = wanted.equals
    label = "expected"
    if wanted.equals_file is not None:
        expected_path = base / wanted.equals_file
        try:
            expected = expected_path.read_text(encoding="utf-8")
            label = str(expected_path)
        except OSError as exc:
            failures.append(f"destination {name}: cannot read {expected_path}: {exc.strerror}")
            expected = None
    if expected is not None and _readable(expected).rstrip("\n") != shown.rstrip("\n"):
        diff = difflib.unified_diff(_readable(expected).rstrip("\n").split("\n"),
                                    shown.rstrip("\n").split("\n"),
                                    fromfile=label, tofile=f"destination {name}", lineterm="")
        failures.append(f"destination {name}: content differs:\n" + "\n".join(diff))
    if wanted.fields:
        try:
            message = Message.parse(content)
        except Exception as exc:
            failures.append(f"destination {name}: content is not HL7 v2, cannot read fields "
                            f"({exc})")
        else:
            failures.extend(_field_failures(f"destination {name}", wanted.fields, message))
    return failures


def _wants_content(wanted: DestinationExpect) -> bool:
    return bool(wanted.contains or wanted.equals is not None or wanted.equals_file is not None
                or wanted.fields or wanted.filtered is False)


def _field_failures(where: str, fields: dict[str, str], message: Message) -> list[str]:
    return [f"{where}: {path} is {message.get(path)!r}, expected {value!r}"
            for path, value in fields.items() if message.get(path) != value]


def _readable(text: str) -> str:
    """Segments on their own lines, whatever the line endings were."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def format_report(report: TestReport) -> str:
    """PASS/FAIL per case, failures indented under it, problems and a summary last."""
    lines: list[str] = []
    for case in report.cases:
        lines.append(f"{'PASS' if case.passed else 'FAIL'} {case.file}: {case.name}")
        for failure in case.failures:
            lines.extend("    " + line for line in failure.split("\n"))
    lines.extend(report.problems)
    failed = sum(not c.passed for c in report.cases)
    summary = f"{len(report.cases) - failed} passed, {failed} failed"
    if report.problems:
        summary += f", {len(report.problems)} problem{'s' if len(report.problems) != 1 else ''}"
    lines.append(summary)
    return "\n".join(lines)


def trace_text(name: str, result: PipelineResult, paths: DestinationPaths | None = None) -> str:
    """A readable account of one message's way through the pipeline (``conduit test``), with
    the path each file destination would write when ``paths`` is given."""
    lines = [f"=== {name}: {result.status}" + (f" ({result.reason})" if result.reason else "")]
    rendered = paths.render(result) if paths is not None else {}
    for stage, text in result.stages:
        if stage in ("filter", "error") or text.startswith("filtered: "):
            lines.append(f"--- {stage}: {text}")
        else:
            lines.append(f"--- {stage}")
            lines.append(_readable(text).rstrip("\n"))
            written, error = rendered.get(stage.removeprefix("destination "), (None, None))
            if stage.startswith("destination ") and (written or error):
                lines.append(f"--- {stage} path: {written or error}")
    return "\n".join(lines)
