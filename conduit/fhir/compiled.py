"""Load the optional mypyc build of the converter, only while it matches the sources.

``scripts/build_compiled.py`` (``make install-compiled``) puts the extension modules in their own
package, ``conduit_fhir_compiled``, never beside the ``.py`` files, with the SHA-256 of each source
they were built from. :func:`install` (run by ``conduit/fhir/__init__.py`` before any converter
module loads) hands them to the import system only if every source still matches; after an edit
it warns and the converter stays pure Python, so a stale build never shadows a change. Absent
build: pure Python, silently. ``CONDUIT_FHIR_PURE=1`` forces pure Python (the test suite sets it:
tests patch module functions, which compiled modules do not allow).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

PACKAGE = "conduit_fhir_compiled"
PURE_ENV = "CONDUIT_FHIR_PURE"
COMPILED = "compiled (mypyc)"
PURE = "pure Python"
#: The modules compiled: the conversion's hot path (segment maps, datatypes, ids, Bundle).
MODULES = (
    "conduit.fhir.v2", "conduit.fhir.datatypes", "conduit.fhir.context", "conduit.fhir.entities",
    "conduit.fhir.ids", "conduit.fhir.bundle", "conduit.fhir.convert",
    *(f"conduit.fhir.segments.{name}" for name in (
        "allergy", "appointment", "charge", "condition", "coverage", "death", "document",
        "encounter", "guarantor", "header", "immunization", "observation", "order", "patient",
        "procedure", "referral", "related", "specimen")),
)
_ROOT = Path(__file__).resolve().parent.parent.parent

#: What the converter runs as in this process: :data:`COMPILED` or :data:`PURE`.
build = PURE


class _Finder:
    """A meta path finder for exactly the compiled modules (and mypyc's runtime library)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        file = self.files.get(name)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(name, str(file))
        return importlib.util.spec_from_file_location(name, file, loader=loader)


def _stale(manifest: dict[str, dict[str, str]]) -> list[str]:
    """The compiled modules whose source changed since the build."""
    stale = []
    for module in MODULES:
        entry = manifest.get(module)
        source = _ROOT.joinpath(*module.split(".")).with_suffix(".py")
        if entry is None or not source.is_file() or (
                hashlib.sha256(source.read_bytes()).hexdigest() != entry["sha256"]):
            stale.append(module)
    return stale


def install() -> str:
    """Load the compiled modules from now on if they are installed and current; say which runs."""
    global build
    if build == COMPILED or os.environ.get(PURE_ENV, "") not in ("", "0"):
        return build
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return build
    where = Path(next(iter(spec.submodule_search_locations)))
    try:
        manifest = json.loads((where / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        warnings.warn(f"{PACKAGE} unreadable ({exc}); the FHIR converter runs as pure Python",
                      RuntimeWarning, stacklevel=2)
        return build
    stale = _stale(manifest)
    if stale:
        warnings.warn(f"the compiled FHIR converter ({where}) was built from other sources than "
                      f"{', '.join(stale)}; running pure Python (rebuild: make install-compiled)",
                      RuntimeWarning, stacklevel=2)
        return build
    if any(module in sys.modules for module in MODULES):
        return build  # already imported as pure Python; never mix the two in one process
    finder = _Finder({name: where / entry["file"] for name, entry in manifest.items()})
    sys.meta_path.insert(0, finder)
    try:  # mypyc's runtime library holds every module's code: a broken build fails here
        for name in finder.files.keys() - set(MODULES):
            importlib.import_module(name)
        missing = [str(file) for file in finder.files.values() if not file.is_file()]
        if missing:
            raise ImportError(f"missing {', '.join(missing)}")
    except ImportError as exc:
        sys.meta_path.remove(finder)
        warnings.warn(f"the compiled FHIR converter ({where}) does not load ({exc}); running "
                      "pure Python (rebuild: make install-compiled)", RuntimeWarning, stacklevel=2)
        return build
    build = COMPILED
    return build
