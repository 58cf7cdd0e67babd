"""A group's column as one PostgreSQL array parameter, written in binary by a dumper made for
its type.

``writes`` sends a group's rows to PostgreSQL as one array per column (``unnest``). psycopg's
own list dumper takes any list: for each it scans the elements for their type, then dumps each
through that type's dumper, in Python (~2.5 µs an element; its text form also escapes each).
The hot path's columns are of six types known in advance: a column wrapped in its type's list
class here is written straight into PostgreSQL's binary array format (~0.3 µs an element), the
form the server reads without parsing text.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

from psycopg import adapters
from psycopg.adapt import Dumper
from psycopg.pq import Format

_HEADER = struct.Struct(">iiiii")  # dimensions, has NULLs, element type, length, lower bound
_EMPTY = struct.Struct(">iii")  # no dimensions, no NULLs, element type
_LENGTH = struct.Struct(">i")
_NULL = _LENGTH.pack(-1)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's timestamps count from here
_MICROSECOND = timedelta(microseconds=1)


class Column(list[Any]):
    """A column of values (None for NULL); the subclass says their PostgreSQL type."""

    element_oid = 0
    array_oid = 0


class Bigints(Column):
    element_oid, array_oid = 20, 1016


class Integers(Column):
    element_oid, array_oid = 23, 1007


class Smallints(Column):
    element_oid, array_oid = 21, 1005


class Texts(Column):
    element_oid, array_oid = 25, 1009


class Byteas(Column):
    element_oid, array_oid = 17, 1001


class Timestamptzs(Column):
    """Aware datetimes (a naive one is taken as UTC, as the store keeps times)."""

    element_oid, array_oid = 1184, 1185


#: Each SQL type's column class, by the name ``writes`` gives it.
BY_TYPE: dict[str, type[Column]] = {
    "bigint": Bigints, "integer": Integers, "smallint": Smallints, "text": Texts,
    "bytea": Byteas, "timestamptz": Timestamptzs}


def _fixed(form: str) -> Callable[[Sequence[Any]], tuple[bytes, bool]]:
    pack = struct.Struct(">i" + form).pack
    size = struct.calcsize(">" + form)

    def elements(values: Sequence[Any]) -> tuple[bytes, bool]:
        if None not in values:  # the usual case, iterated in C
            return b"".join(map(pack, repeat(size), values)), False
        return b"".join(_NULL if v is None else pack(size, v) for v in values), True
    return elements


def _varying(values: Sequence[bytes | None]) -> tuple[bytes, bool]:
    if None not in values:
        lengths = map(_LENGTH.pack, map(len, values))  # type: ignore[arg-type]
        return b"".join(map(b"".join, zip(lengths, values, strict=True))), False  # type: ignore[arg-type]
    return b"".join(_NULL if v is None else _LENGTH.pack(len(v)) + v for v in values), True


def _texts(values: Sequence[str | None]) -> tuple[bytes, bool]:
    return _varying([None if v is None else v.encode() for v in values])


def _timestamps(values: Sequence[datetime | None]) -> tuple[bytes, bool]:
    try:
        return _BIGINTS([None if v is None else (v - _EPOCH) // _MICROSECOND for v in values])
    except TypeError:  # a naive one
        return _BIGINTS([None if v is None else (v.replace(tzinfo=v.tzinfo or UTC) - _EPOCH)
                         // _MICROSECOND for v in values])


_BIGINTS = _fixed("q")
_ELEMENTS: dict[type[Column], Callable[[Column], tuple[bytes, bool]]] = {
    Bigints: _BIGINTS,
    Integers: _fixed("i"),
    Smallints: _fixed("h"),
    Texts: _texts,
    Byteas: _varying,
    Timestamptzs: _timestamps,
}


class _ColumnDumper(Dumper):
    format = Format.BINARY

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        column: type[Column] = cls
        self.oid = column.array_oid
        self._element = column.element_oid
        self._elements = _ELEMENTS[column]

    def dump(self, obj: Any) -> bytes:
        if not obj:
            return _EMPTY.pack(0, 0, self._element)
        elements, null = self._elements(obj)
        return _HEADER.pack(1, null, self._element, len(obj), 1) + elements


for _column in _ELEMENTS:
    adapters.register_dumper(_column, _ColumnDumper)
