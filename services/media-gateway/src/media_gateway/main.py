"""Bootstrap: wires settings, connections, workers and routers into the media gateway app."""

import asyncio
import logging
from importlib import metadata

from contracts.subjects import CHANNEL_STREAM_KEY_ROTATED, EVENTS_STREAM, STREAM_END_REQUESTED, STREAM_VOD_REQUESTED
from servicekit.app import ServiceRuntime, create_app as create_service_app
from servicekit.inbox import InboxConsumer
from servicekit.ratelimit import RateLimiter
from servicekit.retention import Sweep

from media_gateway.config import Settings
from media_gateway.ingest.control import NginxControl
from media_gateway.ingest.nodes import DropResponder, NodeDrops
from media_gateway.ingest.service import (
    LivenessWorker,
    Refused,
    authorize,
    hls_base,
    make_revocation_handler,
    open_local_sessions,
    resume_source_pulls,
)
from media_gateway.ingest.source_pull import SourcePulls
from media_gateway.ingest.stats import IngestStatsWorker
from media_gateway.ingest.views import router as ingest_router
from media_gateway.ingest.nginx_conf import parse_ladder
from media_gateway.joins.service import JoinWorker, make_join_handler
from media_gateway.llhls.origin import Origin
from media_gateway.llhls.transcoder import Transcoders
from media_gateway.llhls.views import router as llhls_router
from media_gateway.recordings.service import RecordingWorker
from media_gateway.srt.service import SrtIngest
from media_gateway.retention import prune_recording_files, prunes
from media_gateway.recordings.views import router as recordings_router
from media_gateway.simulcast.service import DestinationChanges, Simulcasts, resume_simulcasts
from media_gateway.thumbnails.service import ThumbnailWorker
from media_gateway.webhooks.views import router as webhooks_router

log = logging.getLogger("media_gateway")
REVOCATIONS_CONSUMER = "media-gateway-ingest-revocations"
VOD_JOINS_CONSUMER = "media-gateway-vod-joins"
# durable name -> event types (contracts.consumers declares the same; tests/contracts checks it)
DURABLE_CONSUMERS = {REVOCATIONS_CONSUMER: (CHANNEL_STREAM_KEY_ROTATED, STREAM_END_REQUESTED),
                     VOD_JOINS_CONSUMER: (STREAM_VOD_REQUESTED,)}


class _QuickStopConsumer(InboxConsumer):
    """An InboxConsumer that stops at once when idle, instead of finishing its 1-second fetch.

    An event being handled is never interrupted; unhandled fetched ones are simply redelivered.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.busy = False
        self.task: asyncio.Task | None = None

    async def process(self, msg):
        self.busy = True
        try:
            return await super().process(msg)
        finally:
            self.busy = False

    async def run(self) -> None:
        self.task = asyncio.current_task()
        try:
            await super().run()
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
        finally:
            # servicekit leaves the pull subscription open after stop(); NATS's drain would then
            # wait its whole drain timeout (30 s) for a fetch reply nobody reads
            if self._sub is not None:
                try:
                    await self._sub.unsubscribe()
                except Exception as exc:  # noqa: BLE001  shutting down anyway
                    log.info("revocation consumer unsubscribe failed", extra={"error": repr(exc)})

    def stop(self) -> None:
        super().stop()
        if not self.busy and self.task is not None:
            self.task.cancel()


def build_runtime(settings: Settings, drops: NodeDrops, recordings: RecordingWorker,
                  thumbnails: ThumbnailWorker, liveness: LivenessWorker, pulls: SourcePulls,
                  transcoders: Transcoders, joins: JoinWorker, simulcasts: Simulcasts) -> ServiceRuntime:
    runtime = ServiceRuntime(settings, streams=[EVENTS_STREAM], uses_store=True)
    drops.bind(lambda: runtime.nats)
    simulcasts.bind(lambda: runtime.nats, lambda: runtime.db)
    for prune in prunes(settings):
        runtime.add_prune(prune)
    runtime.add_sweep(Sweep("recording_files", lambda: prune_recording_files(runtime.db, settings)))
    consumers: list[InboxConsumer] = []

    async def revocations(rt: ServiceRuntime) -> None:
        # a rotated key or an ended stream drops the live publish (on_update refuses it too)
        consumer = _QuickStopConsumer(rt.db, rt.js, name=REVOCATIONS_CONSUMER, stream=EVENTS_STREAM.name,
                                       subjects=list(DURABLE_CONSUMERS[REVOCATIONS_CONSUMER]),
                                       handler=make_revocation_handler(drops))
        consumers.append(consumer)
        await consumer.run()

    async def vods(rt: ServiceRuntime) -> None:
        await recordings.run(rt.db, rt.store)

    async def vod_requests(rt: ServiceRuntime) -> None:
        consumer = _QuickStopConsumer(rt.db, rt.js, name=VOD_JOINS_CONSUMER, stream=EVENTS_STREAM.name,
                                       subjects=list(DURABLE_CONSUMERS[VOD_JOINS_CONSUMER]),
                                       handler=make_join_handler(joins))
        consumers.append(consumer)
        await consumer.run()

    async def vod_joins(rt: ServiceRuntime) -> None:
        await joins.run(rt.db, rt.store)

    async def live_thumbnails(rt: ServiceRuntime) -> None:
        await thumbnails.run(rt)

    async def silent_sessions(rt: ServiceRuntime) -> None:
        await liveness.run(rt.db)

    stopping = asyncio.Event()

    async def source_pulls(rt: ServiceRuntime) -> None:
        try:
            if pulls.enabled:
                resumed = await resume_source_pulls(rt.db, pulls, settings.ingest_node)
                if resumed:
                    log.info("source pulls resumed", extra={"count": resumed})
            # the restart stopped the forwarders of the sessions still live here; nothing else would
            # start them again before the creator's next publish
            await resume_simulcasts(rt.db, simulcasts, settings)
            if transcoders.enabled:
                # after a restart the open sessions' playlists start over (a new msn 0): the players'
                # old playlists fail and they load the stream again
                for open_session in await open_local_sessions(rt.db, settings.ingest_node):
                    await transcoders.start(open_session.id, join=False)
            await stopping.wait()
        finally:
            await simulcasts.close()
            await transcoders.close()
            await pulls.close()

    # one stopper for every consumer (the revocations' and the vod requests')
    runtime.add_worker(revocations, stop=lambda: [c.stop() for c in consumers])
    # drops other replicas send to the sessions this node holds
    node_drops = DropResponder(drops)
    runtime.add_worker(node_drops, stop=node_drops.stop)
    destination_changes = DestinationChanges(simulcasts)
    runtime.add_worker(destination_changes, stop=destination_changes.stop)
    runtime.add_worker(vods, stop=recordings.stop)
    runtime.add_worker(vod_requests)
    runtime.add_worker(vod_joins, stop=joins.stop)
    runtime.add_worker(live_thumbnails, stop=thumbnails.stop)
    runtime.add_worker(silent_sessions, stop=liveness.stop)
    runtime.add_worker(source_pulls, stop=stopping.set)

    ingest_stats = IngestStatsWorker(settings)

    async def ingest_load(rt: ServiceRuntime) -> None:
        await ingest_stats.run()

    runtime.add_worker(ingest_load, stop=ingest_stats.stop)

    if settings.srt_port is not None:
        async def srt_authorize(key: str, client: str | None) -> None:
            # the same checks as on_publish's: refusals per encoder address, then channels decides
            limiter = RateLimiter(runtime.redis, prefix="media-gateway")
            failure_key = f"publish-fail:ip:{client or 'unknown'}"
            if not (await limiter.peek(failure_key, settings.publish_failures_per_ip)).allowed:
                raise Refused("too many refused publishes from this address")
            try:
                await authorize(runtime.nats, key, client, settings.authorize_timeout_seconds)
            except Refused:
                await limiter.hit(failure_key, settings.publish_failures_per_ip,
                                  settings.publish_failure_window_seconds)
                raise

        srt = SrtIngest(settings, srt_authorize)
        srt_stopping = asyncio.Event()

        async def srt_ingest(rt: ServiceRuntime) -> None:
            srt.start(asyncio.get_running_loop())
            try:
                await srt_stopping.wait()
            finally:
                # closing joins threads that may wait on this loop (an authorization): off the loop
                await asyncio.to_thread(srt.close)

        runtime.add_worker(srt_ingest, stop=srt_stopping.set)
        runtime.srt = srt  # type: ignore[attr-defined]  tests read the bound port
    return runtime


def create_app(settings: Settings | None = None, *, configure_process: bool = True):
    settings = settings or Settings()
    control = NginxControl(settings.ingest_control_url, settings.ingest_app)
    recordings = RecordingWorker(settings)
    joins = JoinWorker(settings)
    pulls = SourcePulls(settings, control)
    origin = Origin(parse_ladder(settings.ingest_ladder), base=hls_base(settings),
                    part_seconds=settings.llhls_part_seconds,
                    window=settings.llhls_window_segments, linger_seconds=settings.llhls_linger_seconds,
                    dvr_seconds=settings.dvr_window_seconds,
                    dvr_dir=settings.dvr_dir if settings.dvr_window_seconds > 0 else None)
    transcoders = Transcoders(settings, origin)
    pulls.on_release.append(transcoders.stop)
    simulcasts = Simulcasts(settings)
    pulls.on_release.append(simulcasts.stop)
    thumbnails = ThumbnailWorker(settings, origin)
    drops = NodeDrops(settings, control, pulls)
    liveness = LivenessWorker(settings, drops)
    app = create_service_app(
        build_runtime(settings, drops, recordings, thumbnails, liveness, pulls, transcoders, joins, simulcasts),
        title="Media gateway",
        description="Local ingest callbacks (nginx-rtmp), live transcoding and the LL-HLS origin, recordings "
                    "to VOD, live thumbnails, simulcast to creators' RTMP(S) destinations, and Mux / Cloudflare Stream webhooks, all translated into media.* "
                    "events.",
        routers=[ingest_router, llhls_router, recordings_router, webhooks_router],
        version=metadata.version("media-gateway-service"),
        configure_process=configure_process,
    )
    app.state.control = control
    app.state.drops = drops
    app.state.pulls = pulls
    app.state.origin = origin
    app.state.transcoders = transcoders
    app.state.simulcasts = simulcasts
    app.state.recordings = recordings
    app.state.joins = joins
    return app
