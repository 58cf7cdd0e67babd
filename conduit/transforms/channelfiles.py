"""Files a step names (stylesheets, lookup tables, Python modules): relative to the channel file.

Steps read them once, when the channel loads (pydantic validation context ``base_dir``), never
per message, and say which file when they cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["channel_path", "read_channel_file"]


def channel_path(path: str, context: Any) -> Path:
    """``path`` as given if absolute, else relative to the channel file's folder (or cwd)."""
    p = Path(path)
    if p.is_absolute():
        return p
    base = context.get("base_dir") if isinstance(context, dict) else None
    return (Path(base) if base is not None else Path.cwd()) / p


def read_channel_file(path: str, context: Any) -> str:
    """The text of a file named in a channel; ValueError naming the file when it cannot."""
    full = channel_path(path, context)
    try:
        return full.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {str(full)!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{str(full)!r} is not UTF-8 (byte {exc.start})") from None
