"""The python step's example (channels/python-name-case.yaml): what no declarative step does.

Names arrive upper-cased; the EHR wants them in name case, including McX, O'X and double-barrelled
names. Called with the step state; changes the message in place.
"""

from __future__ import annotations

import re
from typing import Any

_PART = re.compile(r"[A-Za-z]+")


def _name_case(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        word = match.group().lower()
        if word.startswith("mc") and len(word) > 2:
            return "Mc" + word[2:].capitalize()
        return word.capitalize()

    return _PART.sub(one, text)


def name_case(state: Any) -> None:
    message = state.message
    for path in ("PID-5.1", "PID-5.2", "PID-5.3"):
        value = message.get(path)
        if value:
            message.set(path, _name_case(value))
