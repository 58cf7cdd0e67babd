"""Management API: the caller, users (admin), the access audit (admin, FHIR export)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from conduit.ops.access import Admin, Viewer, remote, state
from conduit.ops.audit import audit_bundle
from conduit.ops.auth import ROLES, Principal, UserError
from conduit.ops.jsonable import json_ready
from conduit.ops.operations import when

router = APIRouter(tags=["users and audit"])


@router.get("/me")
async def me(principal: Principal = Viewer) -> dict[str, Any]:
    """Who is calling, with which role; ``csrf`` is what a session must send as X-CSRF-Token."""
    return {"name": principal.name, "role": principal.role, "kind": principal.kind,
            "csrf": principal.csrf}


@router.get("/users")
async def list_users(request: Request, _: Principal = Admin) -> list[dict[str, Any]]:
    return json_ready(await asyncio.to_thread(state(request).users.list))


class NewUser(BaseModel):
    name: str
    password: str = Field(min_length=8)
    role: str = Field("viewer", description=" | ".join(ROLES))


class UserChange(BaseModel):
    password: str | None = Field(None, min_length=8)
    role: str | None = None
    disabled: bool | None = None


@router.post("/users", status_code=201)
async def add_user(body: NewUser, request: Request, who: Principal = Admin) -> dict[str, Any]:
    web = state(request)
    try:
        await asyncio.to_thread(web.users.add, body.name, body.password, body.role,
                                by=who.name)
    except UserError as exc:
        raise HTTPException(422, str(exc)) from exc
    await asyncio.to_thread(web.audit.record, who.name, "user-add", (None,), remote(request),
                            f"{body.name} as {body.role}")
    return {"name": body.name, "role": body.role}


@router.patch("/users/{name}")
async def change_user(name: str, body: UserChange, request: Request,
                      who: Principal = Admin) -> dict[str, Any]:
    web = state(request)
    try:
        await asyncio.to_thread(lambda: web.users.update(
            name, password=body.password, role=body.role, disabled=body.disabled,
            by=who.name))
    except UserError as exc:
        raise HTTPException(404 if "no user" in str(exc) else 422, str(exc)) from exc
    changed = [k for k, v in body.model_dump().items() if v is not None]
    await asyncio.to_thread(web.audit.record, who.name, "user-change", (None,), remote(request),
                            f"{name}: {', '.join(changed)}")
    return {"name": name, "changed": changed}


@router.delete("/users/{name}")
async def remove_user(name: str, request: Request, who: Principal = Admin) -> dict[str, Any]:
    web = state(request)
    if name == who.name:
        raise HTTPException(409, "you cannot remove yourself")
    try:
        await asyncio.to_thread(web.users.remove, name, by=who.name)
    except UserError as exc:
        raise HTTPException(404, str(exc)) from exc
    await asyncio.to_thread(web.audit.record, who.name, "user-remove", (None,), remote(request),
                            name)
    return {"removed": name}


def _audit_query(user: str | None, action: str | None, message_id: int | None,
                 since: str | None, limit: int, before: int | None) -> dict[str, Any]:
    try:
        start = when(since)
    except ValueError as exc:
        raise HTTPException(422, f"bad time: {exc}") from exc
    return {"user": user, "action": action, "message_id": message_id, "since": start,
            "limit": limit, "before_id": before}


@router.get("/audit")
async def audit_log(request: Request, _: Principal = Admin, user: str | None = None,
                    action: str | None = None, message_id: int | None = None,
                    since: str | None = None, before: int | None = None,
                    limit: Annotated[int, Query(ge=1, le=10_000)] = 200) -> dict[str, Any]:
    """Who viewed or changed what, newest first."""
    query = _audit_query(user, action, message_id, since, limit, before)
    rows = await asyncio.to_thread(lambda: state(request).audit.list(**query))
    return {"items": json_ready(rows), "next": rows[-1]["id"] if len(rows) == limit else None}


@router.get("/audit/fhir")
async def audit_fhir(request: Request, _: Principal = Admin, user: str | None = None,
                     action: str | None = None, message_id: int | None = None,
                     since: str | None = None, before: int | None = None,
                     limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any]:
    """The audit as a FHIR R4 Bundle of AuditEvent resources."""
    query = _audit_query(user, action, message_id, since, limit, before)
    rows = await asyncio.to_thread(lambda: state(request).audit.list(**query))
    return audit_bundle(rows)
