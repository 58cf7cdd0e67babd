"""The dashboard: server-rendered pages (Jinja2) with a little plain JavaScript for live
updates and confirmations; nothing to build. Forms post with the session's CSRF token and
redirect back (post/redirect/get)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from conduit.ops.access import (
    Admin,
    Operator,
    Viewer,
    remote,
    state,
)
from conduit.ops.api_channels import COUNTS_TTL, channel_summary, store_counts
from conduit.ops.auth import ROLES, Principal, UserError
from conduit.ops.deliveries import failed_destinations, open_counts
from conduit.ops.hl7diff import Diff, diff
from conduit.ops.hl7view import stage_view
from conduit.ops.operations import (
    STATUSES,
    Filters,
    ReprocessError,
    field_pairs,
    note_reprocessed,
    reason,
    reprocess,
    source,
    when,
)
from conduit.ops.timefmt import time_tag
from conduit.store import eventlog

router = APIRouter(include_in_schema=False)
_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
templates.env.filters["qs"] = lambda params: urlencode(params, doseq=True)
# {{ text | reason(phi) }}: a stored reason whole for operators, without values for viewers
templates.env.filters["reason"] = lambda text, phi: reason(text, phi=phi) or ""
templates.env.filters["source"] = lambda text, phi: source(text, phi=phi) or "–"
templates.env.filters["when"] = time_tag


def page(request: Request, name: str, principal: Principal | None, status: int = 200,
         **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, {
        "user": principal, "csrf": principal.csrf if principal else None, **context},
        status_code=status)
    return cast(HTMLResponse, response)  # a TemplateResponse is an HTML response


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    return page(request, "error.html", principal, status=status, status_code=status,
                detail=detail)


def safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# -- channels -------------------------------------------------------------------------------

async def _channels(request: Request) -> list[dict[str, Any]]:
    counts = await asyncio.to_thread(store_counts, request)
    return [channel_summary(request, name, counts)
            for name in sorted(state(request).engine.control.channels)]


async def _fulltext(request: Request) -> dict[str, Any]:
    """The full-text index's lag, for the channels that opted in (``search.full_text``)."""
    store = state(request).engine.store
    try:
        behind, seconds = await asyncio.to_thread(store.fulltext_lag)
    except Exception:  # the store unreachable: the page still shows the channels
        return {}
    return {"channels": sorted(store.full_text_channels), "behind": behind,
            "seconds": seconds}


@router.get("/")
async def overview(request: Request, principal: Principal = Viewer) -> HTMLResponse:
    return page(request, "overview.html", principal, channels=await _channels(request),
                fulltext=await _fulltext(request))


@router.get("/ui/channels")
async def channels_fragment(request: Request, principal: Principal = Viewer) -> HTMLResponse:
    """The overview's table alone, refreshed every few seconds by the page's script."""
    return page(request, "_channels.html", principal, channels=await _channels(request),
                fulltext=await _fulltext(request))


@router.get("/channels/{name}")
async def channel_page(name: str, request: Request,
                       principal: Principal = Viewer) -> HTMLResponse:
    web = state(request)
    if name not in web.engine.control.channels:
        raise HTTPException(404, f"no channel {name!r}")
    counts = await asyncio.to_thread(_channel_counts, request, name)
    summary = channel_summary(request, name, counts)
    errors = await asyncio.to_thread(lambda: web.engine.store.search(
        channel=name, status="ERROR", limit=20))
    phi = principal.can("operator")
    if phi and errors:  # their reasons, values included: audited
        await asyncio.to_thread(web.audit.record, principal.name, "search",
                                [r.id for r in errors], remote(request),
                                f"dashboard channel={name} status=ERROR")
    store = web.engine.store.engine
    failures = await asyncio.to_thread(failed_destinations, store, [m.id for m in errors])
    waiting = await asyncio.to_thread(open_counts, store, name)
    recent = await asyncio.to_thread(lambda: eventlog.listed(store, channel=name, limit=5))
    return page(request, "channel.html", principal, channel=summary, errors=errors, phi=phi,
                failures=failures, open_deliveries=waiting, channel_events=recent)


def _channel_counts(request: Request, name: str) -> dict[str, dict[str, int]]:
    """The overview's cached counts when fresh, else this channel's alone (a quarter of the
    work with four channels: the channel page refreshes itself every few seconds)."""
    cached = state(request).extras.get("counts")
    if cached and time.monotonic() - cached[0] < COUNTS_TTL:
        return cast(dict[str, dict[str, int]], cached[1])
    return state(request).engine.store.counts(name)


@router.post("/channels/{name}/{action}")
async def channel_action(name: str, action: str, request: Request,
                         principal: Principal = Viewer) -> Response:
    web = state(request)
    needed = {"start": "operator", "stop": "operator", "pause": "operator",
              "resume": "operator", "redeploy": "admin", "undeploy": "admin"}.get(action)
    if needed is None:
        raise HTTPException(404, f"no action {action!r}")
    if not principal.can(needed):
        raise HTTPException(403, f"this needs the {needed} role")
    if name not in web.engine.control.channels:
        raise HTTPException(404, f"no channel {name!r}")
    try:
        await getattr(web.engine.control, action)(name, user=principal.name)
    except KeyError as exc:
        raise HTTPException(409, f"channel {name!r} is not deployed") from exc
    except Exception as exc:
        problems = getattr(exc, "problems", None)
        raise HTTPException(409, "; ".join(problems) if problems else
                            f"{type(exc).__name__}: {exc}") from exc
    await asyncio.to_thread(web.audit.record, principal.name, f"channel-{action}", (None,),
                            remote(request), name)
    web.extras.pop("counts", None)
    back = request.headers.get("referer", "/")
    return RedirectResponse(safe_next("/" + back.split("/", 3)[-1] if "://" in back else back),
                            status_code=303)


# -- messages -------------------------------------------------------------------------------

@router.get("/messages")
async def messages_page(
        request: Request, principal: Principal = Viewer, channel: str | None = None,
        status: str | None = None, since: str | None = None, until: str | None = None,
        type: str | None = None, control_id: str | None = None, patient: str | None = None,
        q: str | None = None, before: int | None = None,
        field: Annotated[list[str] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50) -> HTMLResponse:
    web = state(request)
    problem = None
    records: list[Any] = []
    fields = [f for f in field or [] if f.strip()]
    try:
        filters = Filters(channel, status, since, until, type, control_id, patient, q, before,
                          limit, field_pairs(fields, ":")).clean()
        if filters.needs_bodies() and not principal.can("operator"):
            raise ValueError("searching by patient, search field or text needs the operator "
                             "role")
        query = filters.query()
        records = await asyncio.to_thread(lambda: web.engine.store.search(**query))
    except ValueError as exc:
        problem = str(exc)
        filters = Filters()
    phi = principal.can("operator")
    if phi and problem is None:  # patient ids and the values in reasons: audited
        await asyncio.to_thread(web.audit.record, principal.name, "search",
                                [r.id for r in records] or [None], remote(request),
                                f"dashboard {filters.audited()}".strip())
    older = filters.params(before=records[-1].id) if len(records) == filters.limit else None
    failures = await asyncio.to_thread(failed_destinations, web.engine.store.engine,
                                       [r.id for r in records])
    return page(request, "messages.html", principal, records=records, filters=filters,
                problem=problem, older=older, statuses=STATUSES, failures=failures,
                channels=sorted(web.engine.control.channels), phi=phi)


@router.get("/messages/{message_id}")
async def message_page(message_id: int, request: Request,
                       principal: Principal = Viewer) -> HTMLResponse:
    web = state(request)
    record = await asyncio.to_thread(web.engine.store.get, message_id)
    if record is None:
        raise HTTPException(404, f"no message {message_id}")
    bodies = principal.can("operator")
    stages: list[dict[str, Any]] = []
    if bodies:
        await asyncio.to_thread(web.audit.record, principal.name, "view", [message_id],
                                remote(request), "dashboard")
        stages.append(stage_view("Raw (received)", record.raw))
        if record.transformed is not None:
            stages.append(stage_view("Transformed", record.transformed))
        for d in record.deliveries:
            if d.content is not None:
                stages.append(stage_view(f"Sent to {d.destination}", d.content))
            if d.response is not None:
                stages.append(stage_view(f"Response of {d.destination}", d.response))
    return page(request, "message.html", principal, record=record, stages=stages,
                bodies=bodies, diffs=stage_diffs(record) if bodies else [])


def stage_diffs(record: Any) -> list[Diff]:
    """What each stage changed: the transform (raw → transformed), then each destination's
    own step (transformed, or raw when nothing transformed, → what was sent)."""
    result = []
    if record.raw is not None and record.transformed is not None:
        result.append(diff("Raw → Transformed", record.raw, record.transformed))
    base = record.transformed if record.transformed is not None else record.raw
    label = "Transformed" if record.transformed is not None else "Raw"
    for d in record.deliveries:
        if base is not None and d.content is not None:
            result.append(diff(f"{label} → Sent to {d.destination}", base, d.content))
    return result


@router.get("/messages/{message_id}/raw")
async def message_raw(message_id: int, request: Request,
                      principal: Principal = Operator) -> Response:
    """The message exactly as received, as a file (a PHI view: audited like the page)."""
    web = state(request)
    record = await asyncio.to_thread(web.engine.store.get, message_id)
    if record is None or record.raw is None:
        raise HTTPException(404, f"no message {message_id}")
    await asyncio.to_thread(web.audit.record, principal.name, "view", [message_id],
                            remote(request), "dashboard raw download")
    return Response(record.raw, media_type="x-application/hl7-v2+er7", headers={
        "Content-Disposition": f'attachment; filename="message-{message_id}.hl7"'})


@router.post("/messages/{message_id}/reprocess")
async def message_reprocess(message_id: int, request: Request,
                            principal: Principal = Operator) -> Response:
    web = state(request)
    try:
        result = await reprocess(web.engine, message_id, user=principal.name)
    except ReprocessError as exc:
        raise HTTPException(409, str(exc)) from exc
    note_reprocessed(web.engine, principal.name, [message_id])
    await asyncio.to_thread(web.audit.record, principal.name, "reprocess", [message_id],
                            remote(request), result.get("mode"))
    return RedirectResponse(f"/messages/{message_id}?reprocessed=1", status_code=303)


# -- admin ----------------------------------------------------------------------------------

@router.get("/admin/users")
async def users_page(request: Request, principal: Principal = Admin,
                     error: str | None = None) -> HTMLResponse:
    web = state(request)
    return page(request, "users.html", principal, users=await asyncio.to_thread(web.users.list),
                roles=ROLES, error=error)


@router.post("/admin/users")
async def users_add(request: Request, name: Annotated[str, Form()],
                    password: Annotated[str, Form()], role: Annotated[str, Form()],
                    principal: Principal = Admin) -> Response:
    web = state(request)
    try:
        await asyncio.to_thread(web.users.add, name, password, role, by=principal.name)
    except UserError as exc:
        return RedirectResponse("/admin/users?" + urlencode({"error": str(exc)}), 303)
    await asyncio.to_thread(web.audit.record, principal.name, "user-add", (None,),
                            remote(request), f"{name} as {role}")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{name}/remove")
async def users_remove(name: str, request: Request, principal: Principal = Admin) -> Response:
    web = state(request)
    if name != principal.name:
        try:
            await asyncio.to_thread(web.users.remove, name, by=principal.name)
        except UserError as exc:
            return RedirectResponse("/admin/users?" + urlencode({"error": str(exc)}), 303)
        await asyncio.to_thread(web.audit.record, principal.name, "user-remove", (None,),
                                remote(request), name)
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/audit")
async def audit_page(request: Request, principal: Principal = Admin, user: str | None = None,
                     action: str | None = None, message_id: int | None = None,
                     since: str | None = None) -> HTMLResponse:
    web = state(request)
    try:
        start = when(since)
    except ValueError:
        start = None
    rows = await asyncio.to_thread(lambda: web.audit.list(
        user=user or None, action=action or None, message_id=message_id, since=start,
        limit=200))
    params = {k: v for k, v in {"user": user, "action": action, "message_id": message_id,
                                "since": since}.items() if v}
    return page(request, "audit.html", principal, rows=rows, params=params)
