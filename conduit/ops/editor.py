"""The dashboard's channel editor: a channel's YAML, its kept versions and a diff of any of them
against the current file, for everyone logged in (literal secrets masked but for admins); for
admins, a textarea to validate and deploy an edit, and a one-click (confirmed) rollback.

Server-rendered, no script beyond the dashboard's own (the confirmation): forms post with the
session's CSRF token. The edited text can be sent to the preview page from the same form.
"""

from __future__ import annotations

import asyncio
import difflib
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from conduit.ops.access import Admin, Viewer, remote, state
from conduit.ops.api_yaml import current_version, shown
from conduit.ops.auth import Principal
from conduit.ops.channel_yaml import (
    EditProblem,
    channel_file,
    check,
    current_text,
    deploy_text,
    roll_back,
    versions,
)
from conduit.ops.dashboard import page

router = APIRouter(include_in_schema=False)


def line_diff(before: str, after: str, before_name: str, after_name: str) -> list[str]:
    return [line.rstrip("\n") for line in difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        before_name, after_name)]


async def _render(request: Request, principal: Principal, name: str, *,
                  edited: str | None = None, comment: str = "", problems: list[str] | None = None,
                  valid: bool = False, compare: int | None = None, deployed: int | None = None,
                  status: int = 200) -> HTMLResponse:
    web = state(request)
    engine = web.engine
    try:
        path = channel_file(engine, name)
    except EditProblem as exc:
        raise HTTPException(exc.status, str(exc.detail)) from exc
    text = await asyncio.to_thread(current_text, engine, name)
    kept = await asyncio.to_thread(versions(engine).list, name)
    current = current_version(kept, text)
    diff: list[str] | None = None
    compared = next((v for v in kept if v.version == compare), None)
    if compare is not None and compared is None:
        raise HTTPException(404, f"channel {name!r} has no version {compare}")
    if compared is not None:
        diff = line_diff(shown(compared.yaml, principal), shown(text or "", principal),
                         f"version {compared.version}", f"current ({path.name})")
    what = f"{name} dashboard" + (f" with version {compare}" if compared else "")
    await asyncio.to_thread(web.audit.record, principal.name, "channel-yaml-view", (None,),
                            remote(request), what)
    response = page(request, "editor.html", principal, status=status, channel_name=name,
                    path=path, yaml=shown(text, principal) if text is not None else None,
                    edited=edited if edited is not None else text, comment=comment,
                    problems=problems or [], valid=valid, versions=kept, current=current,
                    compared=compared, diff=diff, deployed=deployed,
                    masked=not principal.can("admin"),
                    state=engine.control.state(name))
    response.headers["Cache-Control"] = "no-store"  # may hold credentials (admins)
    return response


@router.get("/channels/{name}/yaml")
async def editor_page(name: str, request: Request, principal: Principal = Viewer,
                      compare: int | None = None, deployed: int | None = None) -> HTMLResponse:
    return await _render(request, principal, name, compare=compare, deployed=deployed)


@router.post("/channels/{name}/yaml")
async def editor_submit(name: str, request: Request, yaml: Annotated[str, Form()],
                        comment: Annotated[str, Form(max_length=500)] = "",
                        do: Annotated[str, Form()] = "validate",
                        principal: Principal = Admin) -> Response:
    """``do=validate``: every problem, nothing deployed; ``do=deploy``: then deploy."""
    web = state(request)
    yaml = yaml.replace("\r\n", "\n")  # a textarea posts CRLF line breaks
    form: dict[str, Any] = {"edited": yaml, "comment": comment}
    try:
        if do == "deploy":
            version = await deploy_text(web.engine, name, yaml, principal.name, comment)
        else:
            await asyncio.to_thread(check, web.engine, name, yaml)
    except EditProblem as exc:
        if exc.status == 404:
            raise HTTPException(404, str(exc.detail)) from exc
        return await _render(request, principal, name, problems=exc.problems,
                             status=exc.status, **form)
    if do != "deploy":
        return await _render(request, principal, name, valid=True, **form)
    await asyncio.to_thread(web.audit.record, principal.name, "channel-yaml-deploy", (None,),
                            remote(request), f"{name} version {version.version} dashboard")
    web.extras.pop("counts", None)
    return RedirectResponse(f"/channels/{name}/yaml?deployed={version.version}",
                            status_code=303)


@router.post("/channels/{name}/rollback/{number}")
async def editor_rollback(name: str, number: int, request: Request,
                          principal: Principal = Admin) -> Response:
    web = state(request)
    try:
        version = await roll_back(web.engine, name, number, principal.name)
    except EditProblem as exc:
        if exc.status == 404:
            raise HTTPException(404, str(exc.detail)) from exc
        return await _render(request, principal, name, problems=exc.problems,
                             status=exc.status)
    await asyncio.to_thread(web.audit.record, principal.name, "channel-yaml-rollback", (None,),
                            remote(request),
                            f"{name} to version {number} as version {version.version} dashboard")
    web.extras.pop("counts", None)
    return RedirectResponse(f"/channels/{name}/yaml?deployed={version.version}",
                            status_code=303)
