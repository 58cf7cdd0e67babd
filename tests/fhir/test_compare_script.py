"""scripts/compare_fhir_converter.py in quick mode: floors measured on the corpus (Nov 2026).

Quick mode (one message per type) measured 60/60 converted, 60/60 valid, resource types 94.3%,
key fields 82.9% (full run: 139/139, 139/139, 94.7%, 88.1%); the floors sit a little under so
a regression shows, not noise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_comparison_with_microsoft_fhir_converter() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare_fhir_converter.py"), "--quick",
         "--json"], capture_output=True, check=True, cwd=ROOT, timeout=120)
    numbers = orjson.loads(done.stdout)
    assert numbers["messages"] >= 55
    assert numbers["converted"] == numbers["messages"]
    assert numbers["valid"] == numbers["converted"]
    assert numbers["expected"] >= 50
    assert numbers["resource_types"] >= 0.92
    assert numbers["key_fields"] >= 0.80
    fields = numbers["fields"]
    for name in ("Patient birth date", "Patient gender", "Encounter class",
                 "Immunization vaccine code", "Observation effective time"):
        assert fields[name] == 1.0, name
