"""Management API: preview an edited channel against the deployed one's stored traffic.

``POST /api/channels/{name}/preview`` takes the channel's YAML as the body and answers, per
stored message, what the edited channel would do differently (see ``engine.preview``). The
answer holds message content, so it is for admins only (the role that deploys channels) and
every message previewed is written to the access audit before the answer leaves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from conduit.core.errors import ConfigError
from conduit.engine.preview import MOST, PreviewReport
from conduit.ops.access import Admin, remote, state
from conduit.ops.auth import Principal
from conduit.ops.operations import when

if TYPE_CHECKING:
    from conduit.engine.engine import Engine

router = APIRouter(tags=["channels"])
YAML_BODY = {"requestBody": {"required": True, "content": {"application/yaml": {
    "schema": {"type": "string"},
    "example": "name: adt-to-file\nsource: {type: mllp, port: 2575}\n..."}}}}


class PreviewProblem(Exception):
    """Why a preview cannot run: ``status`` and ``detail`` as the API answers them."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


def run_preview(engine: Engine, name: str, text: str, since: str | None,
                last: int | None) -> PreviewReport:
    """The edited channel ``text`` over the stored messages of deployed channel ``name``
    (blocking: call it in a thread). Its problems are reported as ``file:line: key: what``,
    the file being the deployed one's name; relative paths are read beside the deployed file."""
    from conduit.engine.loader import load_channel_text
    from conduit.engine.pipeline import Pipeline
    from conduit.engine.preview import preview

    deployed = engine.control.channels.get(name)
    if deployed is None:
        raise PreviewProblem(404, f"no channel {name!r}")
    try:
        started = when(since)
    except ValueError as exc:
        raise PreviewProblem(422, f"since: {exc}: use ISO time or an age (24h)") from exc
    where = Path(deployed.path) if deployed.path else Path(f"{name}.yaml")
    try:
        channel = load_channel_text(text, where.name, where.parent if deployed.path
                                    else Path.cwd())
    except ConfigError as exc:
        raise PreviewProblem(422, {"problems": exc.problems}) from exc
    if channel.name != name:
        raise PreviewProblem(422, {"problems": [
            f"{where.name}: name is {channel.name!r}: a preview runs over the stored messages "
            f"of {name!r}, so the edited channel must keep that name"]})
    pipeline = Pipeline(channel, default_zone=engine.settings.timezone)
    return preview(pipeline, engine.store, since=started, last=last)


def previewed(report: PreviewReport) -> list[int | None]:
    """The message ids a report shows (for the audit); one row without a message if none."""
    return [m.id for m in report.messages] or [None]


@router.post("/channels/{name}/preview", openapi_extra=YAML_BODY)
async def preview_channel(
        name: str, request: Request, response: Response, principal: Principal = Admin,
        since: Annotated[str | None, Query(description="Messages received at or after: ISO "
                                                       "time or an age (24h)")] = None,
        last: Annotated[int | None, Query(ge=1, le=MOST, description="The N newest messages "
                                          "(default 100 without since)")] = None,
) -> dict[str, Any]:
    """Run the edited channel (the YAML body) over the deployed channel's stored messages,
    sending nothing and storing nothing: per message filtered or passed and why, a unified diff
    of the transformed content, the routes; a summary. Admins only; every message is audited."""
    web = state(request)
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, "the body must be the channel's YAML in UTF-8") from exc
    try:
        report = await asyncio.to_thread(run_preview, web.engine, name, text, since, last)
    except PreviewProblem as exc:
        raise HTTPException(exc.status, exc.detail) from exc
    await asyncio.to_thread(web.audit.record, principal.name, "preview", previewed(report),
                            remote(request), f"channel={name} api")
    response.headers["Cache-Control"] = "no-store"  # message content
    return report.as_dict()
