"""Bulk actions of the dashboard's message lists: reprocess or export the messages ticked on a
page. The form posts the session's CSRF token like every dashboard form; the work is the API's
own (``reprocess_all``, ``export``), so both audit alike.

The reprocess answer is a page of its own rather than a redirect back: the failures and their
reasons are the answer, and a redirect would have to carry them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from conduit.ops.access import Operator
from conduit.ops.api_messages import EXPORT_IDS, EXPORT_LIMIT, chosen, export, reprocess_all
from conduit.ops.auth import Principal
from conduit.ops.dashboard import page, safe_next, templates
from conduit.ops.operations import Filters

router = APIRouter(include_in_schema=False)

Ids = Annotated[list[int] | None, Form(max_length=EXPORT_IDS)]


def _picked(ids: list[int] | None) -> list[int]:
    if not ids:
        raise HTTPException(422, "tick at least one message")
    return list(dict.fromkeys(ids))


@router.post("/messages/reprocess")
async def reprocess_selected(request: Request, principal: Principal = Operator,
                             ids: Ids = None,
                             back: Annotated[str, Form()] = "/messages") -> HTMLResponse:
    result = await reprocess_all(request, _picked(ids), None, principal)
    failed = [r for r in result["results"] if "error" in r]
    return page(request, "bulk_reprocessed.html", principal, result=result, failed=failed,
                back=safe_next(back))


@router.post("/messages/export")
async def export_selected(request: Request, principal: Principal = Operator,
                          ids: Ids = None,
                          format: Annotated[Literal["hl7", "ndjson"], Form()] = "hl7",
                          ) -> StreamingResponse:
    return export(request, principal, chosen(_picked(ids)), format)


def export_all(filters: Filters) -> dict[str, Any]:
    """The API export's parameters for every message a list's filters match."""
    return {**filters.params(before=None), "limit": EXPORT_LIMIT}


# {{ filters | export_all | qs }}: the query of the list's "export all matching" link
templates.env.filters["export_all"] = export_all
