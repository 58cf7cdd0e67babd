"""Shared by the dashboard tests: an engine with its dashboard on a free port, users, logins."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support import running_engine

ADT = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01^ADT_A01|{id}|P|2.5\r"
       b"EVN|A01|20260101120000\r"
       b"PID|1||{patient}^^^HOSP^MR||FAMILYNAME^GIVEN||19800101|F\r"
       b"PV1|1|I|WARD^101^1\r")
PASSWORD = "correct horse battery"


def adt(control_id: str, patient: str = "PAT1") -> bytes:
    return ADT.replace(b"{id}", control_id.encode()).replace(b"{patient}", patient.encode())


def file_channel(tmp_path: Path, name: str = "adt", **extra: Any) -> dict[str, Any]:
    return {"name": name, "source": {"type": "mllp", "host": "127.0.0.1", "port": 0},
            "destinations": [{"name": "archive", "type": "file",
                              "path": str(tmp_path / "out" / "{{ msg['MSH-10'] }}.hl7")}],
            **extra}


@contextlib.asynccontextmanager
async def dashboard(tmp_path: Path, channels: list[dict[str, Any]] | None = None,
                    store_url: str | None = None, **settings: Any) -> AsyncIterator[Any]:
    async with running_engine(channels if channels is not None else [file_channel(tmp_path)],
                              tmp_path, store_url=store_url, dashboard=settings) as engine:
        users = engine.service("dashboard").app.state.web.users
        for role in ("viewer", "operator", "admin"):
            await asyncio.to_thread(users.add, role, PASSWORD, role)
        yield engine


def base_url(engine: Any) -> str:
    return engine.service("dashboard").url.rstrip("/")


async def login(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> str:
    """Log in through the form like a browser; returns the session's CSRF token."""
    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    answer = await client.post("/login", data={"username": name, "password": password,
                                               "csrf_token": token.group(1), "next": "/"})
    assert answer.status_code == 303, answer.text
    me = await client.get("/api/me")
    return str(me.json()["csrf"])


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())
