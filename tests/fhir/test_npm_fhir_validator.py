"""Corpus Bundles validated by the npm ``fhir`` package, a validator independent of the
``fhir.resources`` models the other tests use (issue 14: "also check with the npm fhir validator").

Every corpus message that converts is validated as FHIR R4 with unexpected properties as errors.
Skips cleanly when node or ``tests/peers/node/node_modules/fhir`` is missing (``.ci/run`` runs
``npm install`` there).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conduit.core.errors import MessageError
from conduit.fhir import convert, dumps
from conduit.hl7.message import Message

PEER = Path(__file__).parents[1] / "peers" / "node"
CORPUS = Path(__file__).parents[1] / "samples" / "corpus"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (PEER / "node_modules" / "fhir").exists(),
    reason="node or npm fhir missing: run `npm install` in tests/peers/node (.ci/run does)")

R4_INVALID: set[str] = set()
"""Corpus messages whose Bundle is known invalid as R4 (none: OBR-13's supportingInfo
extension, whose value would be an R4B/R5 CodeableReference, is not mapped)."""


def _bundles(paths: list[Path]) -> dict[str, bytes]:
    out = {}
    for path in paths:
        if path.parent.name == "edge-raw":
            continue
        try:
            message = Message.parse(path.read_bytes())
            out[str(path.relative_to(CORPUS))] = dumps(convert(message))
        except MessageError:
            continue  # refused by design (e.g. a message naming no sender): not a Bundle
        except Exception:  # unparseable corpus samples are other tests' matter
            continue
    return out


def _validate(bundles: dict[str, bytes], tmp_path: Path) -> dict[str, list[str]]:
    payload = tmp_path / "bundles.json"
    payload.write_bytes(b"[" + b",".join(bundles.values()) + b"]")
    done = subprocess.run(["node", str(PEER / "validate_fhir.js"), str(payload)],
                          capture_output=True, text=True, timeout=120, check=True)
    results = json.loads(done.stdout)
    assert len(results) == len(bundles)
    return {name: [e for e in r["errors"] if not _said_absent(json.loads(bundles[name]), e)]
            for name, r in zip(bundles, results, strict=True)}


_DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def _said_absent(resource: dict, error: str) -> bool:
    """Whether a "Missing property" error names a required primitive that is there as its
    ``_element`` with a data-absent-reason extension (FHIR R4 json.html: a primitive may be
    extensions only; the npm validator looks for the value alone)."""
    location, _, message = error.partition(": ")
    if message != "Missing property":
        return False
    kind, *steps = location.split(".")
    nodes = [e["resource"] for e in resource.get("entry", ())
             if e.get("resource", {}).get("resourceType") == kind]
    if resource.get("resourceType") == kind:
        nodes.append(resource)
    if not steps:
        return False
    for step in steps[:-1]:  # "destination[0]": that repetition
        name, _, index = step.partition("[")
        found = [n.get(name) for n in nodes if isinstance(n, dict)]
        nodes = [v[int(index[:-1])] if index and isinstance(v, list) and len(v) > int(index[:-1])
                 else v for v in found if v is not None]
    element = steps[-1]
    for node in nodes:
        if isinstance(node, dict) and element not in node:
            urls = {x.get("url") for x in node.get("_" + element, {}).get("extension", ())}
            if _DATA_ABSENT in urls:
                return True
    return False


def test_corpus_bundles_are_valid_r4_for_npm_fhir(tmp_path: Path) -> None:
    paths = [p for p in sorted(CORPUS.rglob("*.hl7"))
             if str(p.relative_to(CORPUS)) not in R4_INVALID]
    bundles = _bundles(paths)
    assert len(bundles) >= 150
    errors = {name: errs for name, errs in _validate(bundles, tmp_path).items() if errs}
    assert not errors, "\n".join(f"{name}: {errs[:5]}" for name, errs in errors.items())


def test_the_validator_rejects_an_invalid_resource(tmp_path: Path) -> None:
    """The peer can fail: a wrong code and an unknown element are reported."""
    bad = {"bad": json.dumps({"resourceType": "Patient", "gender": "bogus",
                              "colour": "blue"}).encode()}
    errors = _validate(bad, tmp_path)["bad"]
    assert any("gender" in e for e in errors) and any("colour" in e for e in errors), errors


def test_only_a_value_said_absent_may_be_missing(tmp_path: Path) -> None:
    """A required primitive given as data-absent-reason is not an error; missing, it is."""
    def header(source: dict) -> bytes:
        return json.dumps({"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {
            "resourceType": "MessageHeader", "id": "m",
            "eventCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0003",
                            "code": "A01"}, "source": source}}]}).encode()
    absent = {"extension": [{"url": _DATA_ABSENT, "valueCode": "unknown"}]}
    errors = _validate({"said": header({"_endpoint": absent}), "missing": header({}),
                        "other": header({"_endpoint": {"extension": [
                            {"url": "http://example.org/x", "valueCode": "y"}]}})}, tmp_path)
    assert errors["said"] == []
    assert any("endpoint" in e for e in errors["missing"]), errors
    assert any("endpoint" in e for e in errors["other"]), errors
