"""The dashboard's preview page: an admin edits the deployed channel's YAML in a textarea and
sees what the change would do to the stored traffic before deploying it.

Server-rendered, no script: the form posts (with the session's CSRF token) and the answer is the
same page with the results. Every message shown is audited, as the API's preview is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from conduit.engine.preview import DEFAULT_LAST, MOST
from conduit.ops.access import Admin, remote, state
from conduit.ops.api_preview import PreviewProblem, previewed, run_preview
from conduit.ops.auth import Principal
from conduit.ops.dashboard import page

router = APIRouter(include_in_schema=False)


def _deployed_yaml(request: Request, name: str) -> str:
    channel = state(request).engine.control.channels.get(name)
    if channel is None:
        raise HTTPException(404, f"no channel {name!r}")
    if not channel.path:
        return f"name: {name}\n"
    try:
        return Path(channel.path).read_text(encoding="utf-8")
    except OSError as exc:
        return f"# cannot read {channel.path}: {exc.strerror}\nname: {name}\n"


@router.get("/channels/{name}/preview")
async def preview_form(name: str, request: Request,
                       principal: Principal = Admin) -> HTMLResponse:
    text = await asyncio.to_thread(_deployed_yaml, request, name)
    return page(request, "preview.html", principal, channel_name=name, yaml=text, since="",
                last=str(DEFAULT_LAST), most=MOST, report=None, problems=[])


@router.post("/channels/{name}/preview")
async def preview_results(name: str, request: Request,
                          yaml: Annotated[str, Form()],
                          since: Annotated[str, Form()] = "",
                          last: Annotated[str, Form()] = "",
                          principal: Principal = Admin) -> HTMLResponse:
    web = state(request)
    form: dict[str, Any] = {"channel_name": name, "yaml": yaml, "since": since, "last": last,
                            "most": MOST}
    count = None
    if last.strip():
        if not last.strip().isdigit() or not 1 <= int(last) <= MOST:
            return page(request, "preview.html", principal, status=422, report=None,
                        problems=[f"last: a number from 1 to {MOST}"], **form)
        count = int(last)
    try:
        report = await asyncio.to_thread(run_preview, web.engine, name, yaml,
                                         since.strip() or None, count)
    except PreviewProblem as exc:
        if exc.status == 404:
            raise HTTPException(404, str(exc.detail)) from exc
        problems = exc.detail["problems"] if isinstance(exc.detail, dict) else [exc.detail]
        return page(request, "preview.html", principal, status=exc.status, report=None,
                    problems=problems, **form)
    await asyncio.to_thread(web.audit.record, principal.name, "preview", previewed(report),
                            remote(request), f"channel={name} dashboard")
    response = page(request, "preview.html", principal, report=report, problems=[], **form)
    response.headers["Cache-Control"] = "no-store"  # message content
    return response
