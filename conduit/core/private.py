"""Files at rest are owner-only: folders 0700, files 0600, whatever the process's umask.

The store holds every message, the dashboard's secret signs its sessions: neither is for other
users of the machine. A umask only takes bits away, so a file created 0600 is at most 0600;
the modes are set again after creating, so that a umask of 0 cannot widen what was asked.
SQLite creates its WAL and SHM files with the database file's mode, so a store file made here
keeps them owner-only too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> Path:
    """Create ``path`` and its missing parents owner-only; an existing folder is left as is."""
    missing: list[Path] = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        try:
            made.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue
        os.chmod(made, FOLDER_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty and owner-only if missing (its folder too); an existing file of
    ours is narrowed to owner-only (one made by an older version, or by hand)."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                     FILE_MODE)
    except FileExistsError:
        with contextlib.suppress(OSError):  # not ours to change: leave it
            if path.stat().st_mode & 0o777 & ~FILE_MODE:
                os.chmod(path, FILE_MODE)
        return path
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def append_durably(path: Path, line: bytes) -> None:
    """Append ``line`` to ``path`` (created owner-only, its folders too) and fsync it: a
    journal entry that survives a crash once this returns."""
    private_folder(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(path: Path, data: bytes, *, suffix: str = ".tmp") -> None:
    """Replace ``path`` by ``data`` at once and fsynced (a reader or a crash sees the old file
    or the new one): written beside it under a hidden name ending in ``suffix``, then renamed
    over it. A new file is owner-only; an existing one keeps its mode."""
    try:
        mode: int | None = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
