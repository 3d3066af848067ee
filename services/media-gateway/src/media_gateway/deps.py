"""Short dependency aliases for the views."""

from typing import Annotated

from fastapi import Depends, Request
from servicekit.deps import Runtime, SessionDep, get_runtime, get_session, get_settings  # noqa: F401  (re-exported for views)
from servicekit.problems import Problem
from servicekit.ratelimit import RateLimiter

from media_gateway.config import Settings
from media_gateway.ingest.control import NginxControl
from media_gateway.ingest.nodes import NodeDrops
from media_gateway.ingest.source_pull import SourcePulls
from media_gateway.llhls.transcoder import Transcoders
from media_gateway.recordings.service import RecordingWorker
from media_gateway.simulcast.service import Simulcasts


def get_limiter(request: Request) -> RateLimiter:
    return RateLimiter(get_runtime(request).redis, prefix="media-gateway")


def get_control(request: Request) -> NginxControl:
    return request.app.state.control


def get_drops(request: Request) -> NodeDrops:
    return request.app.state.drops


def get_pulls(request: Request) -> SourcePulls:
    return request.app.state.pulls


def get_transcoders(request: Request) -> Transcoders:
    return request.app.state.transcoders


def get_simulcasts(request: Request) -> Simulcasts:
    return request.app.state.simulcasts


def get_recordings(request: Request) -> RecordingWorker:
    return request.app.state.recordings


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The raw request body, refused with 413 beyond `limit` bytes (checked while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"The request body is larger than {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
ControlDep = Annotated[NginxControl, Depends(get_control)]
DropsDep = Annotated[NodeDrops, Depends(get_drops)]
PullsDep = Annotated[SourcePulls, Depends(get_pulls)]
TranscodersDep = Annotated[Transcoders, Depends(get_transcoders)]
SimulcastsDep = Annotated[Simulcasts, Depends(get_simulcasts)]
RecordingsDep = Annotated[RecordingWorker, Depends(get_recordings)]
