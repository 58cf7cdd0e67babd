"""Editing a deployed channel's YAML from the browser or the API: read it, validate an edited
text, deploy it (keeping the version it replaces), roll back to a kept version.

The text is written where the running channel was loaded from (its file in the folder given to
``conduit run``, or ``data_dir/deployed/`` for one uploaded through the API), so a restart or a
redeploy reads what was deployed. A text with problems never reaches the file; a text that
loads but cannot start (its port taken) is taken back: the previous file is written again and
the previous channel deployed again. Deploys keep the channel's queued messages
(``Controller.deploy``). One deploy at a time per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conduit.core.errors import ConfigError
from conduit.core.private import replace_durably
from conduit.store.versions import ChannelVersions, Version, sha256

if TYPE_CHECKING:
    from conduit.engine.channel import Channel
    from conduit.engine.engine import Engine

__all__ = ["EditProblem", "channel_file", "check", "current_text", "deploy_text", "keep_deployed",
           "roll_back", "versions"]

_NAME_LINE = re.compile(r"^name\s*:", re.MULTILINE)
#: One deploy from the editor at a time, per engine.
_LOCKS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


class EditProblem(Exception):
    """Why an edit is refused: ``status`` and ``detail`` as the API answers them (422 with
    ``{"problems": [...]}`` for a text with problems)."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail

    @property
    def problems(self) -> list[str]:
        if isinstance(self.detail, dict):
            return list(self.detail.get("problems", []))
        return [str(self.detail)]


def versions(engine: Engine) -> ChannelVersions:
    return ChannelVersions(engine.store.engine)


def _deployed(engine: Engine, name: str) -> Channel:
    channel = engine.control.channels.get(name)
    if channel is None:
        raise EditProblem(404, f"no channel {name!r}")
    return channel


def channel_file(engine: Engine, name: str) -> Path:
    """Where the running channel's YAML lives (a channel without a file gets one in
    ``data_dir/deployed/``, where the API keeps uploaded channels)."""
    channel = _deployed(engine, name)
    if channel.path:
        return Path(channel.path)
    return Path(engine.settings.data_dir) / "deployed" / f"{name}.yaml"


def current_text(engine: Engine, name: str) -> str | None:
    """The channel's file as written (None if it is gone or unreadable)."""
    try:
        return channel_file(engine, name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def check(engine: Engine, name: str, text: str) -> Channel:
    """The edited ``text`` loaded as the file would be (``file:line: key: what`` problems, its
    relative paths read beside the file); it must keep the channel's name."""
    from conduit.engine.loader import load_channel_text

    where = channel_file(engine, name)
    try:
        channel = load_channel_text(text, where.name, where.parent)
    except ConfigError as exc:
        raise EditProblem(422, {"problems": exc.problems}) from exc
    if channel.name != name:
        found = _NAME_LINE.search(text)
        line = text.count("\n", 0, found.start()) + 1 if found else 1
        raise EditProblem(422, {"problems": [
            f"{where.name}:{line}: name: is {channel.name!r}, this is the editor of {name!r}: "
            f"a channel is not renamed here (deploy the new name as a new channel, then "
            f"undeploy {name!r})"]})
    return channel


def _write(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` at once, with the old file's permissions. The temporary
    name is not a channel file (``--watch``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_durably(path, text.encode("utf-8"), suffix=".editing")


def _lock(engine: Engine) -> asyncio.Lock:
    lock = _LOCKS.get(engine)
    if lock is None:
        lock = _LOCKS[engine] = asyncio.Lock()
    return lock


async def deploy_text(engine: Engine, name: str, text: str, user: str | None,
                      comment: str | None = None) -> Version:
    """Validate ``text``, keep the channel's current file as a version (if it is not already
    the newest one), write ``text`` to the channel's file, deploy it and keep it as the next
    version. Raises :class:`EditProblem` and changes nothing when the text has problems."""
    from conduit.engine.loader import load_channel

    async with _lock(engine):
        await asyncio.to_thread(check, engine, name, text)
        path = channel_file(engine, name)
        previous = engine.control.channels[name]
        before = await asyncio.to_thread(current_text, engine, name)
        kept = versions(engine)
        if before is not None:
            newest = await asyncio.to_thread(kept.newest, name)
            if newest is None or newest.sha256 != sha256(before):
                await asyncio.to_thread(kept.record, name, before, None,
                                        f"the file as found in {path.name} before this edit")
        try:
            await asyncio.to_thread(_write, path, text)
        except OSError as exc:  # a read-only channel folder: nothing changed
            raise EditProblem(409, f"cannot write {path}: {exc.strerror or exc}") from exc
        try:
            channel = await asyncio.to_thread(load_channel, path)
            await engine.control.deploy(channel, user=user,
                                        why=comment or "edited in the dashboard")
        except Exception as exc:
            await asyncio.to_thread(_put_back, path, before)
            with contextlib.suppress(Exception):
                await engine.control.deploy(previous, user=user,
                                            why="put back: the edited version did not start")
            problems = getattr(exc, "problems", None)
            why = "; ".join(problems) if problems else f"{type(exc).__name__}: {exc}"
            raise EditProblem(409, f"not deployed ({why}); {name} runs its previous version "
                                   f"again") from exc
        return await asyncio.to_thread(kept.record, name, text, user, comment or None)


def keep_deployed(engine: Engine, name: str, user: str | None, comment: str) -> None:
    """Keep the file a channel was just deployed from (``POST /api/channels``) as its next
    version, so the editor's history and rollback cover it too."""
    text = current_text(engine, name)
    if text is not None:
        versions(engine).record(name, text, user, comment)


def _put_back(path: Path, before: str | None) -> None:
    if before is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    else:
        _write(path, before)


async def roll_back(engine: Engine, name: str, number: int, user: str | None) -> Version:
    """Deploy kept version ``number`` again, as the channel's next version."""
    _deployed(engine, name)
    old = await asyncio.to_thread(versions(engine).get, name, number)
    if old is None:
        raise EditProblem(404, f"channel {name!r} has no version {number}")
    return await deploy_text(engine, name, old.yaml, user, f"rolled back to version {number}")
