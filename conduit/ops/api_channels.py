"""Management API: channels (list, detail, start/stop/pause/resume, deploy/undeploy/redeploy)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from conduit.core.errors import ConfigError
from conduit.core.reason import public
from conduit.ops.access import Admin, Operator, Viewer, remote, state
from conduit.ops.auth import Principal

log = structlog.get_logger(__name__)
router = APIRouter(tags=["channels"])
COUNTS_TTL = 2.0


#: Counts older than this are counted again before answering; younger but past COUNTS_TTL, they
#: are answered as they are while a thread counts again.
COUNTS_STALE_MAX = 30.0


def store_counts(request: Request) -> dict[str, dict[str, int]]:
    """Messages per channel and status, cached a moment: a grouped scan of the store, which
    takes 0.2-0.6 s at a million messages on PostgreSQL, so a page refreshing every few
    seconds is answered from the last count while the next is made in the background."""
    web = state(request)
    cached = web.extras.get("counts")
    if cached is None or time.monotonic() - cached[0] > COUNTS_STALE_MAX:
        return _count(web)
    if time.monotonic() - cached[0] >= COUNTS_TTL and "counting" not in web.extras:
        web.extras["counting"] = True
        threading.Thread(target=_count, args=(web,), name="conduit-counts", daemon=True).start()
    counts: dict[str, dict[str, int]] = cached[1]
    return counts


def _count(web: Any) -> dict[str, dict[str, int]]:
    try:
        counts = web.engine.store.counts()
        web.extras["counts"] = (time.monotonic(), counts)
        return counts
    except Exception:
        if threading.current_thread().name != "conduit-counts":
            raise
        log.debug("counting messages failed; the last counts stay", exc_info=True)
        return {}
    finally:
        web.extras.pop("counting", None)


def channel_summary(request: Request, name: str,
                    counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    web = state(request)
    engine = web.engine
    control = engine.control
    channel = control.channels.get(name)
    runtime = engine.runtimes.get(name)
    sampler = web.extras.get("sampler")
    mine = counts.get(name, {})
    depths = engine.control.queue_depths(name)
    breakers = runtime.breaker_states() if runtime else {}
    blocked = runtime.blocked_destinations() if runtime else {}
    workers = runtime.destination_state() if runtime else {}
    destinations = []
    for config in (channel.destinations if channel else []):
        prefix = f"conduit.{name}.dest.{config.name}"
        depth = sum(v or 0 for q, v in depths.items() if q == prefix or q.startswith(prefix + "."))
        held, why = blocked.get(config.name, (None, None))
        worker = workers.get(config.name, {})
        destinations.append({"name": config.name, "type": config.type, "queue_depth": depth,
                             "breaker": breakers.get(config.name, "none"),
                             "ordered": bool(config.ordered),
                             # an ordered destination holding its queue on a failing message;
                             # why in its viewers' form (the message itself is one click away)
                             "blocked": why is not None, "blocked_message": held,
                             "blocked_reason": public(why),
                             "paused": worker.get("paused_reason"),
                             # deliveries since this process started
                             "sent_since_start": worker.get("sent"),
                             "failed_since_start": worker.get("failed")})
    return {
        "name": name,
        "description": channel.description if channel else "",
        "state": control.state(name),
        "error": control.errors.get(name),
        "source": runtime.describe() if runtime and runtime.source else None,
        "source_type": channel.source.type if channel else None,
        "path": channel.path if channel else None,
        "counts": {"received": sum(mine.values()), "filtered": mine.get("FILTERED", 0),
                   "sent": mine.get("SENT", 0), "errored": mine.get("ERROR", 0),
                   "queued": mine.get("QUEUED", 0) + mine.get("RECEIVED", 0),
                   "transformed": mine.get("TRANSFORMED", 0)},
        "throughput": round(sampler.rate(name), 2) if sampler else 0.0,
        "queue_depths": depths,
        "destinations": destinations,
    }


def _known(request: Request, name: str) -> None:
    if name not in state(request).engine.control.channels:
        raise HTTPException(404, f"no channel {name!r}")


@router.get("/channels")
async def list_channels(request: Request, _: Principal = Viewer) -> list[dict[str, Any]]:
    """Every deployed (or undeployed this run) channel with its state and message counts."""
    counts = await asyncio.to_thread(store_counts, request)
    return [channel_summary(request, name, counts)
            for name in sorted(state(request).engine.control.channels)]


@router.get("/channels/{name}")
async def get_channel(name: str, request: Request, _: Principal = Viewer) -> dict[str, Any]:
    """One channel: state, counts, destinations with queue depth and breaker state."""
    _known(request, name)
    counts = await asyncio.to_thread(store_counts, request)
    return channel_summary(request, name, counts)


async def _act(request: Request, name: str, action: str, who: Principal) -> dict[str, Any]:
    web = state(request)
    control = web.engine.control
    _known(request, name)
    try:
        await getattr(control, action)(name, user=who.name)
    except KeyError as exc:
        raise HTTPException(409, f"channel {name!r} is not deployed") from exc
    except ConfigError as exc:
        raise HTTPException(422, {"problems": exc.problems}) from exc
    except (ValueError, OSError, RuntimeError) as exc:
        raise HTTPException(409, f"{type(exc).__name__}: {exc}") from exc
    await asyncio.to_thread(web.audit.record, who.name, f"channel-{action}", (None,),
                            remote(request), name)
    web.extras.pop("counts", None)
    return {"name": name, "state": control.state(name)}


@router.post("/channels/{name}/start")
async def start_channel(name: str, request: Request, who: Principal = Operator) -> dict[str, Any]:
    """Open the source and run the workers (from paused or stopped)."""
    return await _act(request, name, "start", who)


@router.post("/channels/{name}/stop")
async def stop_channel(name: str, request: Request, who: Principal = Operator) -> dict[str, Any]:
    """Close the source and hold the workers; queued messages wait."""
    return await _act(request, name, "stop", who)


@router.post("/channels/{name}/pause")
async def pause_channel(name: str, request: Request, who: Principal = Operator) -> dict[str, Any]:
    """Close the source; the queues keep draining."""
    return await _act(request, name, "pause", who)


@router.post("/channels/{name}/resume")
async def resume_channel(name: str, request: Request,
                         who: Principal = Operator) -> dict[str, Any]:
    """Same as start."""
    return await _act(request, name, "resume", who)


@router.post("/channels/{name}/undeploy")
async def undeploy_channel(name: str, request: Request, who: Principal = Admin) -> dict[str, Any]:
    """Remove the channel from the engine; its queued messages wait for a later deploy."""
    return await _act(request, name, "undeploy", who)


@router.post("/channels/{name}/redeploy")
async def redeploy_channel(name: str, request: Request, who: Principal = Admin) -> dict[str, Any]:
    """Reload the channel's YAML file and deploy it again, keeping queued messages."""
    return await _act(request, name, "redeploy", who)


class DeployRequest(BaseModel):
    path: str = Field(description="A channel YAML file the engine can read; with `content`, "
                                  "only its name counts (the file the channel is kept as).",
                      examples=["channels/adt-to-file.yaml"])
    content: str | None = Field(
        None, description="The channel's YAML, sent from elsewhere (`conduit channels deploy "
                          "FILE`): kept under the data directory's `deployed/` folder, from "
                          "which a redeploy reads it.")


def _receive(data_dir: Path, name: str, content: str) -> Path:
    """Keep uploaded YAML as ``data_dir/deployed/name`` once it loads (a broken upload never
    replaces a good one); problems name the file as the sender called it."""
    import shutil
    import tempfile

    from conduit.engine.loader import load_channel

    if Path(name).suffix not in (".yaml", ".yml") or name.startswith("."):
        raise ConfigError([f"{name}: a channel file name ends in .yaml or .yml"])
    folder = data_dir / "deployed"
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
    try:
        (staging / name).write_text(content, encoding="utf-8")
        try:
            load_channel(staging / name)
        except ConfigError as exc:
            raise ConfigError([p.replace(str(staging / name), name)
                               for p in exc.problems]) from None
        (staging / name).replace(folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / name


@router.post("/channels")
async def deploy_channel(body: DeployRequest, request: Request,
                         who: Principal = Admin) -> dict[str, Any]:
    """Deploy a channel from a YAML file the engine reads, or from the YAML sent in `content`
    (replaces a deployed channel of the same name, keeping its queued messages)."""
    from conduit.engine.loader import load_channel
    from conduit.ops.channel_yaml import keep_deployed

    web = state(request)
    path = Path(body.path)
    try:
        if body.content is not None:
            path = await asyncio.to_thread(_receive, web.engine.settings.data_dir, path.name,
                                           body.content)
        channel = await asyncio.to_thread(load_channel, path)
        await web.engine.control.deploy(channel, user=who.name)
        await asyncio.to_thread(keep_deployed, web.engine, channel.name, who.name,
                                f"deployed from {path.name} (api)")
    except ConfigError as exc:
        raise HTTPException(422, {"problems": exc.problems}) from exc
    except (OSError, RuntimeError, ValueError) as exc:
        raise HTTPException(409, f"{type(exc).__name__}: {exc}") from exc
    await asyncio.to_thread(web.audit.record, who.name, "channel-deploy", (None,),
                            remote(request), f"{channel.name} from {path}")
    return {"name": channel.name, "state": web.engine.control.state(channel.name)}
