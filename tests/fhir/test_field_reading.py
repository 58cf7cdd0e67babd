"""The fast paths of conduit.fhir.v2 read exactly what the plain reading of a field gives.

Field and Seg skip work when a field has no escapes, subcomponents, repetitions or whitespace
(one split instead of a decode per component, a shared Field for ``field(n)`` and ``reps(n)``,
no Field at all for ``seg[n]``). The reference below is the straightforward reading (split,
first subcomponent, unescape, strip), as the conversion did it before those shortcuts; for
generated fields, every access must answer the same.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from conduit.fhir.datatypes import _zone_offset
from conduit.fhir.v2 import Field, Seg
from conduit.hl7.escape import unescape
from conduit.hl7.message import Segment, Separators

SEPS = Separators()
PIECES = ["A", "b", "7", "é", " ", "\t", "\x1c", "\xa0", "^", "&", "~", '""', "\\T\\", "\\S\\",
          "\\E\\", "\\X41\\", "-", "."]
field_text = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)


def _text(raw: str) -> str:
    if SEPS.escape in raw:
        raw = unescape(raw, SEPS, charset="utf-8")
    return raw.strip()


def reference_component(raw: str, i: int, *, sub: bool = False) -> str:
    parts = raw.split(SEPS.subcomponent if sub else SEPS.component)
    if not 0 < i <= len(parts):
        return ""
    v = parts[i - 1]
    if not sub and SEPS.subcomponent in v:
        v = v.split(SEPS.subcomponent, 1)[0]
    return _text(v) if v else ""


def reference_subcomponent(raw: str, i: int, j: int) -> str:
    parts = raw.split(SEPS.component)
    return reference_component(parts[i - 1] if i <= len(parts) else "", j, sub=True)


def reference_present(raw: str) -> bool:
    return bool(raw) and raw != '""' and bool(raw.strip(SEPS.component + SEPS.subcomponent + " "))


@settings(max_examples=400, deadline=None)
@given(field_text)
def test_field_components_as_the_plain_reading(raw: str) -> None:
    f = Field(raw, SEPS, "utf-8")
    components = f.components()
    for i in range(0, 24):
        assert f[i] == reference_component(raw, i), (raw, i)
        if 0 < i < len(components):
            assert components[i] == f[i]
    for i in range(1, 8):
        subs = f.subcomponents(i)
        for j in range(1, 5):
            assert f.sub(i, j) == reference_subcomponent(raw, i, j), (raw, i, j)
            assert f.part(i)[j] == f.sub(i, j) == subs[j]
    assert bool(f) == reference_present(raw), raw


@settings(max_examples=300, deadline=None)
@given(st.lists(field_text, min_size=1, max_size=6))
def test_segment_reads_as_the_plain_reading(fields: list[str]) -> None:
    seg = Seg(Segment("OBX|" + "|".join(fields), SEPS), "utf-8")
    for n in range(1, len(fields) + 3):
        raw = fields[n - 1] if n <= len(fields) else ""
        first = raw.split(SEPS.repetition, 1)[0]
        assert seg[n] == reference_component(first, 1), (raw, n)
        assert seg.field(n).raw == first
        assert [r.raw for r in seg.reps(n)] == [r for r in raw.split(SEPS.repetition)
                                               if raw and reference_present(r)]


def test_zone_offset_is_strftime_cut_to_minutes() -> None:
    """utcoffset instead of strftime('%z'): the same text, historical (LMT, seconds) and
    daylight-saving offsets included."""
    rng = random.Random(14)
    for name in ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata",
                 "America/St_Johns", "Africa/Monrovia", "Pacific/Chatham", "UTC"):
        tz = ZoneInfo(name)
        for _ in range(400):
            t = datetime(1850, 1, 1) + timedelta(minutes=rng.randrange(0, 250 * 525_600))
            parts = (str(t.year), f"{t.month:02d}", f"{t.day:02d}", f"{t.hour:02d}",
                     f"{t.minute:02d}", "")
            expected = t.replace(tzinfo=tz).strftime("%z") or "+0000"
            assert _zone_offset(tz, *parts) == f"{expected[:3]}:{expected[3:5]}", (name, t)
