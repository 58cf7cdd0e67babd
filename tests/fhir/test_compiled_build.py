"""The optional mypyc build (``make install-compiled``): loaded only while current, same Bundles.

The fallback tests always run (a fake build in a temporary directory). The equality test needs the
real build installed and skips otherwise: every corpus message is converted in a child process
with the compiled modules and in one without, and the Bundle bytes must be identical.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conduit.fhir.compiled import COMPILED, MODULES, PACKAGE, PURE, PURE_ENV

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "samples" / "corpus"

CONVERT_ALL = """
import hashlib, json, sys
from pathlib import Path
from conduit.core.errors import MessageError
from conduit.fhir import compiled, convert, dumps
from conduit.hl7.message import Message

out = {"build": compiled.build, "bundles": {}}
for path in sorted(Path(sys.argv[1]).rglob("*.hl7")):
    try:
        result = dumps(convert(Message.parse(path.read_bytes())))
    except MessageError as exc:
        result = f"refused: {type(exc).__name__}: {exc}".encode()
    out["bundles"][str(path.relative_to(sys.argv[1]))] = result.decode()
print(json.dumps(out))
"""


def _child(code: str, *args: str, pure: bool, extra_path: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    paths = [str(ROOT), *([str(extra_path)] if extra_path else []),
             os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p),
           PURE_ENV: "1" if pure else "0", "CONDUIT_TIMEZONE": "America/Chicago",
           "TZ": "America/Chicago"}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, check=True)


def _fake_build(where: Path, digest: str) -> Path:
    """A ``conduit_fhir_compiled`` package with a manifest only (no extension modules)."""
    package = where / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    manifest = {m: {"file": f"{m}.so", "sha256": digest} for m in MODULES}
    (package / "manifest.json").write_text(json.dumps(manifest))
    return where


REPORT = "import warnings, conduit.fhir as f; print(f.compiled.build)"


def test_a_build_from_other_sources_is_not_loaded_and_says_so(tmp_path: Path) -> None:
    """An edited source after the build: warning, and the edited .py files run."""
    run = _child(REPORT, pure=False, extra_path=_fake_build(tmp_path, "0" * 64))
    assert run.stdout.strip() == PURE
    assert "built from other sources" in run.stderr
    assert "make install-compiled" in run.stderr


def test_a_build_that_does_not_load_is_not_used_and_says_so(tmp_path: Path) -> None:
    """Current sources but no extension modules (a broken install): warning, pure Python."""
    digests = {m: hashlib.sha256(ROOT.joinpath(*m.split(".")).with_suffix(".py").read_bytes())
               .hexdigest() for m in MODULES}
    where = _fake_build(tmp_path, "")
    manifest = {m: {"file": f"{m}.so", "sha256": digests[m]} for m in MODULES}
    (where / PACKAGE / "manifest.json").write_text(json.dumps(manifest))
    run = _child(REPORT, pure=False, extra_path=where)
    assert run.stdout.strip() == PURE
    assert "does not load (missing" in run.stderr


def test_pure_python_can_be_forced(tmp_path: Path) -> None:
    run = _child(REPORT, pure=True, extra_path=_fake_build(tmp_path, "0" * 64))
    assert (run.stdout.strip(), run.stderr) == (PURE, "")


def test_without_a_build_the_converter_is_pure_python_silently() -> None:
    if importlib.util.find_spec(PACKAGE) is not None:
        pytest.skip(f"{PACKAGE} is installed in this environment")
    run = _child(REPORT, pure=False)
    assert (run.stdout.strip(), run.stderr) == (PURE, "")


@pytest.mark.skipif(importlib.util.find_spec(PACKAGE) is None,
                    reason=f"the optional mypyc build ({PACKAGE}) is not installed: "
                    "make install-compiled")
def test_every_corpus_message_gives_the_same_bundle_compiled_and_pure() -> None:
    compiled = json.loads(_child(CONVERT_ALL, str(CORPUS), pure=False).stdout)
    if compiled["build"] != COMPILED:
        pytest.skip("the installed mypyc build is stale (built from other sources) or "
                    "unloadable: make install-compiled")
    pure = json.loads(_child(CONVERT_ALL, str(CORPUS), pure=True).stdout)
    assert pure["build"] == PURE
    assert len(pure["bundles"]) >= 200
    differ = [name for name, bundle in pure["bundles"].items()
              if compiled["bundles"].get(name) != bundle]
    assert differ == [], f"{len(differ)} Bundles differ compiled vs pure: {differ[:10]}"
    assert hashlib.sha256(json.dumps(compiled["bundles"]).encode()).digest() == (
        hashlib.sha256(json.dumps(pure["bundles"]).encode()).digest())
