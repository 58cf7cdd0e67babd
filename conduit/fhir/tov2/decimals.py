"""FHIR JSON read with its decimals as written.

A FHIR decimal carries its precision (``7.20`` is not ``7.2``: two significant decimals were
measured), and OBX-5 must say the same. orjson and ``float`` drop trailing zeros, so a body
that becomes v2 is read with the standard library's parser, each decimal a ``Decimal``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

__all__ = ["JSONDecodeError", "read_json"]

JSONDecodeError = json.JSONDecodeError


def read_json(data: str | bytes) -> Any:
    """``data`` parsed (a UTF-8 BOM is ignored), numbers with a fraction or exponent as
    Decimal; raises JSONDecodeError."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return json.loads(text.removeprefix("\ufeff"), parse_float=Decimal)
