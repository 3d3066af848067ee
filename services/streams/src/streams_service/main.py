"""Bootstrap: wires settings, connections, consumers, workers and routers into the streams app."""

from importlib import metadata

from fastapi import Request

from contracts.subjects import EVENTS_STREAM, VIEWERS_STREAM
from servicekit.app import ServiceRuntime, create_app as create_service_app
from servicekit.problems import problem_response
from servicekit.security import KeyFetcher

from streams_service.clips.service import ClipCutter
from streams_service.clips.views import channel_router as clip_channel_router, router as clips_router
from streams_service.config import Settings
from streams_service.consumers import consumers
from streams_service.ingest.service import Sweeper
from streams_service.streams.lifecycle import IllegalTransition
from streams_service.streams.views import channel_router, router as streams_router
from streams_service.retention import prunes
from streams_service.viewers.service import ViewerCounter


def build_runtime(settings: Settings, jwks: KeyFetcher | None = None) -> ServiceRuntime:
    """`jwks` replaces fetching auth's JWKS over HTTP (tests hand in their own key)."""
    # presence counts live in memory; Valkey holds the clip rate limits, the store the clips
    runtime = ServiceRuntime(settings, streams=[EVENTS_STREAM, VIEWERS_STREAM], uses_store=True, jwks=jwks)
    for prune in prunes(settings):
        runtime.add_prune(prune)
    for worker in consumers(settings):
        runtime.add_worker(worker, stop=worker.stop)
    sweeper = Sweeper(settings)
    runtime.add_worker(sweeper, stop=sweeper.stop)
    cutter = ClipCutter(settings)
    runtime.add_worker(cutter, stop=cutter.stop)
    runtime.cutter = cutter
    viewers = ViewerCounter(settings)
    runtime.add_worker(viewers, stop=viewers.stop)
    runtime.viewers = viewers
    return runtime


async def _illegal_transition(_: Request, exc: IllegalTransition):
    return problem_response(409, str(exc))


def create_app(settings: Settings | None = None, *, configure_process: bool = True,
               jwks: KeyFetcher | None = None):
    settings = settings or Settings()
    runtime = build_runtime(settings, jwks)
    app = create_service_app(
        runtime, title="Streams service",
        description=("Stream sessions and their lifecycle (OFFLINE -> LIVE -> ENDING -> ARCHIVED), driven by "
                     "ingest events and by the creator's Go live / End stream; reconnect window; live "
                     "viewer counts; clips. Chat history (/api/streams/{id}/messages) is served by the chat "
                     "service."),
        routers=[streams_router, channel_router, clips_router, clip_channel_router],
        version=metadata.version("streams-service"),
        configure_process=configure_process,
    )
    app.add_exception_handler(IllegalTransition, _illegal_transition)
    app.state.viewers = runtime.viewers
    return app

