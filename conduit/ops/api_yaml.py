"""Management API: a deployed channel's YAML, its kept versions, validate, deploy, roll back.

Everyone logged in reads the YAML and its history; viewers and operators get it with literal
secrets masked (``yaml_mask``), admins as written. Validate, deploy and roll back are for
admins. Every read of a YAML text, every deploy and every rollback is in the access audit.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from conduit.ops.access import Admin, Viewer, remote, state
from conduit.ops.api_preview import YAML_BODY
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
from conduit.ops.yaml_mask import masked
from conduit.store.versions import Version, sha256

router = APIRouter(tags=["channels"])


def shown(text: str, principal: Principal) -> str:
    """The YAML as ``principal`` may see it: as written for admins, else secrets masked."""
    return text if principal.can("admin") else masked(text)


def current_version(kept: list[Version], text: str | None) -> int | None:
    """The kept version the channel's file is now (None if the file was changed by hand)."""
    digest = sha256(text) if text is not None else None
    return next((v.version for v in kept if v.sha256 == digest), None)


def _failed(exc: EditProblem) -> HTTPException:
    return HTTPException(exc.status, exc.detail)


async def _body(request: Request) -> str:
    try:
        return (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, "the body must be the channel's YAML in UTF-8") from exc


async def audited(request: Request, principal: Principal, action: str, detail: str) -> None:
    await asyncio.to_thread(state(request).audit.record, principal.name, action, (None,),
                            remote(request), detail)


@router.get("/channels/{name}/yaml")
async def get_yaml(name: str, request: Request, response: Response,
                   principal: Principal = Viewer) -> dict[str, Any]:
    """The channel's YAML file as written (admins) or with its literal secrets masked (others);
    ``version``: the kept version it is, if any. Audited."""
    engine = state(request).engine
    try:
        path = channel_file(engine, name)
    except EditProblem as exc:
        raise _failed(exc) from exc
    text = await asyncio.to_thread(current_text, engine, name)
    if text is None:
        raise HTTPException(404, f"the file of channel {name!r} ({path.name}) cannot be read")
    kept = await asyncio.to_thread(versions(engine).list, name)
    await audited(request, principal, "channel-yaml-view", f"{name} api")
    response.headers["Cache-Control"] = "no-store"  # an admin's copy may hold credentials
    return {"name": name, "path": str(path), "yaml": shown(text, principal),
            "masked": not principal.can("admin"), "sha256": sha256(text),
            "version": current_version(kept, text)}


def version_entry(version: Version, current: int | None) -> dict[str, Any]:
    return {"version": version.version, "sha256": version.sha256, "user": version.username,
            "at": version.at.isoformat(), "comment": version.comment,
            "current": version.version == current}


@router.get("/channels/{name}/versions")
async def list_versions(name: str, request: Request,
                        _: Principal = Viewer) -> list[dict[str, Any]]:
    """Every kept version of the channel's YAML, newest first (without the texts)."""
    engine = state(request).engine
    try:
        channel_file(engine, name)
    except EditProblem as exc:
        raise _failed(exc) from exc
    kept = await asyncio.to_thread(versions(engine).list, name)
    current = current_version(kept, await asyncio.to_thread(current_text, engine, name))
    return [version_entry(v, current) for v in kept]


@router.get("/channels/{name}/versions/{version}")
async def get_version(name: str, version: int, request: Request, response: Response,
                      principal: Principal = Viewer) -> dict[str, Any]:
    """One kept version with its YAML (masked for non-admins). Audited."""
    engine = state(request).engine
    found = await asyncio.to_thread(versions(engine).get, name, version)
    if found is None:
        raise HTTPException(404, f"channel {name!r} has no version {version}")
    current = current_version([found], await asyncio.to_thread(current_text, engine, name))
    await audited(request, principal, "channel-yaml-view", f"{name} version {version} api")
    response.headers["Cache-Control"] = "no-store"
    return {**version_entry(found, current), "yaml": shown(found.yaml, principal),
            "masked": not principal.can("admin")}


@router.post("/channels/{name}/yaml/validate", openapi_extra=YAML_BODY)
async def validate_yaml(name: str, request: Request, _: Principal = Admin) -> dict[str, Any]:
    """Check an edited YAML (the body) as a deploy would, deploying nothing: 422 with every
    problem as ``file:line: key: what``."""
    text = await _body(request)
    try:
        await asyncio.to_thread(check, state(request).engine, name, text)
    except EditProblem as exc:
        raise _failed(exc) from exc
    return {"name": name, "valid": True}


@router.post("/channels/{name}/yaml", openapi_extra=YAML_BODY)
async def deploy_yaml(
        name: str, request: Request, principal: Principal = Admin,
        comment: Annotated[str | None, Query(max_length=500,
                                             description="Why (kept with the version)")] = None,
) -> dict[str, Any]:
    """Validate the edited YAML (the body), keep the current file as a version, write the new
    one where the channel is loaded from and deploy it (queued messages kept). A YAML with
    problems changes nothing (422). Audited."""
    web = state(request)
    text = await _body(request)
    try:
        version = await deploy_text(web.engine, name, text, principal.name, comment)
    except EditProblem as exc:
        raise _failed(exc) from exc
    await audited(request, principal, "channel-yaml-deploy",
                  f"{name} version {version.version} api")
    web.extras.pop("counts", None)
    return {"name": name, "version": version.version, "state": web.engine.control.state(name)}


@router.post("/channels/{name}/rollback/{version}")
async def rollback(name: str, version: int, request: Request,
                   principal: Principal = Admin) -> dict[str, Any]:
    """Deploy a kept version again, as the channel's next version. Audited."""
    web = state(request)
    try:
        made = await roll_back(web.engine, name, version, principal.name)
    except EditProblem as exc:
        raise _failed(exc) from exc
    await audited(request, principal, "channel-yaml-rollback",
                  f"{name} to version {version} as version {made.version} api")
    web.extras.pop("counts", None)
    return {"name": name, "version": made.version, "rolled_back_to": version,
            "state": web.engine.control.state(name)}
