"""The secret the dashboard's login forms and sessions are signed with."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from conduit.core.private import FILE_MODE, private_folder
from conduit.engine.engine import Engine


def session_secret(engine: Engine) -> str:
    """The configured secret, else one generated once into the data directory (mode 0600 in a
    0700 folder, whatever the umask)."""
    configured = engine.settings.dashboard.session_secret
    if configured:
        return configured
    path = Path(engine.settings.data_dir) / "dashboard.secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = secrets.token_urlsafe(32)
        private_folder(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value
