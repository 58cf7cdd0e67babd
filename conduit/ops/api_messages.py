"""Management API: message search, detail (every stage), reprocess, export.

Bodies (raw, transformed, sent, responses) need the operator role and every body shown or
exported is written to the access audit first. Viewers see metadata without patient ids, and
reasons and errors without the values they quote; an operator's listing (patient ids, values)
is audited as a search, with the filters used.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from conduit.ops.access import Operator, Viewer, remote, state
from conduit.ops.auth import Principal
from conduit.ops.operations import (
    Filters,
    ReprocessError,
    detail,
    field_pairs,
    note_reprocessed,
    reprocess,
    summary,
)

router = APIRouter(tags=["messages"])
EXPORT_LIMIT = 100_000
#: messages one export may name by id (a page of the dashboard's list holds at most 500)
EXPORT_IDS = 1000


def _filters(channel: str | None, status: str | None, since: str | None, until: str | None,
             type: str | None, control_id: str | None, patient: str | None, q: str | None,
             before: int | None, limit: int, field: list[str] | None = None) -> Filters:
    try:
        return Filters(channel, status, since, until, type, control_id, patient, q, before,
                       limit, field_pairs(field, ":")).clean()
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


Text = Annotated[str | None, Query()]


@router.get("/messages")
async def search_messages(
        request: Request, principal: Principal = Viewer,
        channel: Text = None,
        status: Annotated[str | None, Query(description="RECEIVED, FILTERED, TRANSFORMED, "
                                                        "QUEUED, SENT or ERROR")] = None,
        since: Annotated[str | None, Query(description="ISO time or an age: 15m, 2h, 7d")] = None,
        until: Text = None,
        type: Annotated[str | None, Query(description="Message type prefix: ADT, ADT^A01")] = None,
        control_id: Annotated[str | None, Query(description="MSH-10")] = None,
        patient: Annotated[str | None, Query(description="Patient id (PID-3.1); operator")] = None,
        q: Annotated[str | None, Query(description="Full text: every word (channels with "
                                                   "search: {full_text: true}); operator")] = None,
        field: Annotated[list[str] | None, Query(description=(
            "Search field NAME:VALUE, e.g. OBR-3:ACC123, MRN:12345, PID-5.1:DOE; repeat for "
            "several (all must match); operator"))] = None,
        before: Annotated[int | None, Query(description="Page: ids below this one")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    """Stored messages, newest first, a page at a time (``next`` is the next page's ``before``)."""
    filters = _filters(channel, status, since, until, type, control_id, patient, q, before, limit,
                       field)
    if filters.needs_bodies() and not principal.can("operator"):
        raise HTTPException(403, "searching by patient, search field or text needs the "
                                 "operator role")
    try:
        query = filters.query()
    except ValueError as exc:
        raise HTTPException(422, f"bad time: {exc}") from exc
    web = state(request)
    records = await asyncio.to_thread(lambda: web.engine.store.search(**query))
    phi = principal.can("operator")
    if phi:
        await asyncio.to_thread(web.audit.record, principal.name, "search",
                                [r.id for r in records] or [None], remote(request),
                                f"api {filters.audited()}".strip())
    items = [summary(r, phi=phi) for r in records]
    return {"items": items,
            "next": records[-1].id if len(records) == filters.limit else None}


@router.get("/messages/export")
async def export_messages(
        request: Request, principal: Principal = Operator,
        channel: Text = None, status: Text = None, since: Text = None, until: Text = None,
        type: Text = None, control_id: Text = None, patient: Text = None, q: Text = None,
        field: Annotated[list[str] | None, Query(description=(
            "Search field NAME:VALUE, as in the search; repeat for several"))] = None,
        ids: Annotated[list[int] | None, Query(max_length=EXPORT_IDS, description=(
            f"These messages only (ids=1&ids=2, at most {EXPORT_IDS}), instead of filters"))]
        = None,
        format: Literal["ndjson", "hl7"] = "ndjson",
        limit: Annotated[int, Query(ge=1, le=EXPORT_LIMIT)] = 1000) -> StreamingResponse:
    """Matching messages (or the ones named by ``ids``) with every stage: NDJSON (one message
    a line) or raw HL7 (one message after another, segments CR-separated). Each exported
    message is audited."""
    if ids:
        if any((channel, status, since, until, type, control_id, patient, q, field)):
            raise HTTPException(422, "export either ids or the messages matching filters, "
                                     "not both")
        return export(request, principal, chosen(ids), format)
    filters = _filters(channel, status, since, until, type, control_id, patient, q, None, 1000,
                       field)
    return export(request, principal, searched(state(request).engine.store, filters, limit),
                  format)


def export(request: Request, principal: Principal, batches: AsyncIterator[list[int]],
           format: Literal["ndjson", "hl7"]) -> StreamingResponse:
    """The download of the messages whose ids ``batches`` gives, a batch at a time, each
    batch audited before it is sent (the API's export and the dashboard's)."""
    web = state(request)
    store = web.engine.store
    where = remote(request)

    async def lines() -> AsyncIterator[bytes]:
        async for ids in batches:
            full = await asyncio.to_thread(store.get_many, ids)
            found = [r for r in full if r is not None]
            await asyncio.to_thread(web.audit.record, principal.name, "export",
                                    [r.id for r in found], where, f"format={format}")
            for record in found:
                if format == "hl7":
                    yield (record.raw or b"").rstrip(b"\r\n") + b"\r\n"
                else:
                    yield orjson.dumps(detail(record, bodies=True)) + b"\n"

    media = "application/x-ndjson" if format == "ndjson" else "x-application/hl7-v2+er7"
    return StreamingResponse(lines(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="messages.{format}"'})


async def searched(store: Any, filters: Filters, limit: int) -> AsyncIterator[list[int]]:
    """The ids of up to ``limit`` messages matching ``filters``, newest first, 500 at a time."""
    remaining, before = limit, None
    while remaining > 0:
        page = Filters(**{**filters.__dict__, "before": before, "limit": min(remaining, 500)})
        records = await asyncio.to_thread(functools.partial(store.search, **page.query()))
        if not records:
            return
        yield [r.id for r in records]
        remaining -= len(records)
        before = records[-1].id
        if len(records) < page.limit:
            return


async def chosen(ids: list[int]) -> AsyncIterator[list[int]]:
    """Ids picked by hand, once each, newest first (as a search lists them), 500 at a time."""
    unique = sorted(set(ids), reverse=True)
    for start in range(0, len(unique), 500):
        yield unique[start:start + 500]


@router.get("/messages/{message_id}")
async def get_message(message_id: int, request: Request,
                      principal: Principal = Viewer) -> dict[str, Any]:
    """One message with every stage: raw, transformed, and per destination what was sent and
    answered, attempts, errors and events. Bodies for operators (audited), metadata for viewers."""
    web = state(request)
    record = await asyncio.to_thread(web.engine.store.get, message_id)
    if record is None:
        raise HTTPException(404, f"no message {message_id}")
    bodies = principal.can("operator")
    if bodies:
        await asyncio.to_thread(web.audit.record, principal.name, "view", [message_id],
                                remote(request), "api")
    return detail(record, bodies=bodies)


class ReprocessRequest(BaseModel):
    destinations: list[str] | None = Field(
        None, description="Resend the stored content to these destinations only; default: "
                          "run the raw message through the whole channel again.")


class BulkReprocess(ReprocessRequest):
    ids: list[int] = Field(min_length=1, max_length=10_000)


@router.post("/messages/{message_id}/reprocess")
async def reprocess_message(message_id: int, request: Request,
                            body: ReprocessRequest | None = None,
                            principal: Principal = Operator) -> dict[str, Any]:
    """Send one message through its channel again."""
    result: dict[str, Any] = (await reprocess_all(
        request, [message_id], body.destinations if body else None, principal))["results"][0]
    if "error" in result:
        raise HTTPException(409, result["error"])
    return result


@router.post("/messages/reprocess")
async def reprocess_messages(body: BulkReprocess, request: Request,
                             principal: Principal = Operator) -> dict[str, Any]:
    """Send many messages through their channels again; failures are listed, not fatal."""
    return await reprocess_all(request, body.ids, body.destinations, principal)


async def reprocess_all(request: Request, ids: list[int], destinations: list[str] | None,
                        principal: Principal) -> dict[str, Any]:
    """Reprocess each message, a failure noted with its reason and the rest going on; the
    ones done are audited (the API's reprocess and the dashboard's bulk one)."""
    web = state(request)
    results: list[dict[str, Any]] = []
    for message_id in ids:
        try:
            results.append(await reprocess(web.engine, message_id, user=principal.name,
                                           destinations=destinations))
        except ReprocessError as exc:
            results.append({"id": message_id, "error": str(exc)})
    done = [r["id"] for r in results if "error" not in r]
    note_reprocessed(web.engine, principal.name, done, len(results) - len(done),
                     how=f"resent to {', '.join(destinations)}" if destinations
                     else "reprocessed")
    await asyncio.to_thread(web.audit.record, principal.name, "reprocess", done,
                            remote(request), ",".join(destinations or []) or None)
    return {"results": results, "reprocessed": len(done)}
