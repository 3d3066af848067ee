"""Simulcast: while a session is live on this node, one ffmpeg per enabled destination plays the
session's source from src (as the transcoders do) and publishes it, `-c copy` (no re-encoding), to
the creator's RTMP(S) destination.

A forwarder is a process of its own reading its own play of src: its failure (a refused
connection, a destination that drops it, a slow link nginx-rtmp drops frames for) touches neither
the encoder's publish nor the transcoders. It is retried with exponential backoff while the
session lasts and reports each change of state (`media.simulcast.state_changed`, through the
outbox) to channels, which shows it on the API.

The destinations and their keys come from channels (`channels.simulcast.destinations`, asked at
go-live and again on `channel.destinations_updated`); the key is in the target URL only, which is
never logged: ffmpeg's messages are masked before they are logged or reported.

A restart of this service stops the forwarders with it; the restarted service starts them again
for the sessions still open on its node whose encoder still publishes (`resume_simulcasts`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from contracts.envelope import parse_event
from contracts.events.channels import DestinationsUpdated
from contracts.events.media import SimulcastState, SimulcastStateChanged
from contracts.requests import SimulcastDestinationsReply, SimulcastDestinationsRequest, SimulcastTarget
from contracts.subjects import CHANNEL_DESTINATIONS_UPDATED, CHANNELS_SIMULCAST_DESTINATIONS, \
    MEDIA_SIMULCAST_STATE_CHANGED
from servicekit.db import Database
from servicekit.messaging import SubscriptionWorker
from servicekit.outbox import stage_event

from media_gateway.config import Settings
from media_gateway.ingest.service import SOURCE, is_open, open_local_sessions, source_stream_name
from media_gateway.ingest.source_pull import SOURCE_APP
from media_gateway.ingest.stats import read_live_publishers

log = logging.getLogger("media_gateway.simulcast")

# a forwarder that stayed up this long starts its backoff over after it fails
STABLE_SECONDS = 30.0
MAX_ERROR_CHARS = 300


def ffmpeg_argv(ffmpeg: str, source_url: str, target_url: str) -> list[str]:
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
            # the same live play of src as the transcoders (media_gateway.llhls.transcoder)
            "-analyzeduration", "500000", "-probesize", "500000", "-rtmp_live", "live", "-tcp_nodelay", "1",
            "-i", source_url,
            "-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy",
            # `out_time_us` > 0 on stdout: packets reached the destination's connection
            "-progress", "pipe:1", "-stats_period", "1",
            "-f", "flv", "-flvflags", "no_duration_filesize", target_url]


def mask(text: str, target: SimulcastTarget) -> str:
    """ffmpeg's message with the destination's key replaced (ffmpeg quotes the output URL)."""
    url = target.url.get_secret_value()
    key = url.rsplit("/", 1)[-1]
    masked = text.replace(url, url[: len(url) - len(key)] + "****")
    if key:
        masked = masked.replace(key, "****")
    return masked


Report = Callable[[str, SimulcastState, str | None], None]


class Forwarder:
    """One destination of one session: ffmpeg restarted with backoff until `stop()`."""

    def __init__(self, settings: Settings, session_id: str, target: SimulcastTarget, report: Report):
        self.settings = settings
        self.session_id = session_id
        self.target = target
        self._report = report
        self.process: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.state = SimulcastState.IDLE
        self.attempts = 0

    def source_url(self) -> str:
        host, port = self.settings.ingest_rtmp_address
        return f"rtmp://{host}:{port}/{SOURCE_APP}/{source_stream_name(self.session_id)}"

    def _set(self, state: SimulcastState, error: str | None = None) -> None:
        if state == self.state and error is None:
            return
        self.state = state
        self._report(self.target.id, state, error)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"simulcast {self.session_id} {self.target.id}")

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            self._set(SimulcastState.CONNECTING)
            try:
                error = await self._once()
            except Exception as exc:  # noqa: BLE001  a failed start is retried like a failed connection
                error = f"could not start ffmpeg: {type(exc).__name__}"
            if self._stopping.is_set():
                break
            failures = 1 if time.monotonic() - began >= STABLE_SECONDS else failures + 1
            self._set(SimulcastState.FAILED, error or "the destination closed the connection")
            delay = min(self.settings.simulcast_retry_max_seconds,
                        self.settings.simulcast_retry_seconds * 2 ** (failures - 1))
            log.info("simulcast forwarder failed; retrying",
                     extra={"sessionId": self.session_id, "destinationId": self.target.id,
                            "retryInSeconds": delay, "error": error})
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass
        self._set(SimulcastState.IDLE)

    async def _once(self) -> str | None:
        """Run ffmpeg once; the reason it ended (masked), or None when it ended cleanly."""
        self.attempts += 1
        argv = ffmpeg_argv(self.settings.ffmpeg_binary, self.source_url(), self.target.url.get_secret_value())
        self.process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        errors = asyncio.create_task(_tail(self.process.stderr))
        await self._watch_progress(self.process.stdout)
        code = await self.process.wait()
        tail = await errors
        if code == 0 and not tail:
            return None
        message = " | ".join(tail) or f"ffmpeg exited with {code}"
        return mask(message, self.target)[:MAX_ERROR_CHARS]

    async def _watch_progress(self, stdout: asyncio.StreamReader) -> None:
        while line := await stdout.readline():
            name, _, value = line.decode(errors="replace").strip().partition("=")
            if name == "out_time_us" and value.isdigit() and int(value) > 0:
                self._set(SimulcastState.LIVE)

    async def stop(self) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.returncode is None:
            for signal_it in (process.terminate, process.kill):
                signal_it()
                try:
                    await asyncio.wait_for(process.wait(), 3)
                    break
                except TimeoutError:
                    continue
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()


async def _tail(stream: asyncio.StreamReader, keep: int = 2) -> list[str]:
    lines: deque[str] = deque(maxlen=keep)
    while line := await stream.readline():
        text = line.decode(errors="replace").strip()
        if text:
            lines.append(text[:300])
    return list(lines)


class Simulcasts:
    """The forwarders of the sessions this node holds."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._nats = None
        self._db = None
        self._channels: dict[str, str] = {}  # session id -> channel id
        self._forwarders: dict[str, dict[str, Forwarder]] = {}  # session id -> destination id -> forwarder
        self._tasks: set[asyncio.Task] = set()
        self._syncs: dict[str, set[asyncio.Task]] = {}  # session id -> its lookups in flight
        self._locks: dict[str, asyncio.Lock] = {}
        self._reports: asyncio.Queue = asyncio.Queue()
        self._reporter: asyncio.Task | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.simulcast_enabled

    def bind(self, nats: Callable, db: Callable) -> None:
        self._nats, self._db = nats, db

    def forwarders(self, session_id: str) -> dict[str, Forwarder]:
        return dict(self._forwarders.get(session_id, {}))

    def start(self, session_id: str, channel_id: str) -> None:
        """The session went live here: forward it to the channel's destinations (in the background:
        on_publish must not wait for the lookup)."""
        if not self.enabled or session_id in self._channels:
            return
        self._channels[session_id] = channel_id
        self._forwarders[session_id] = {}
        self._spawn(session_id)

    def refresh(self, channel_id: str) -> None:
        """The channel's destinations changed: forward the held session to the new set."""
        for session_id, held in list(self._channels.items()):
            if held == channel_id:
                self._spawn(session_id)

    def _spawn(self, session_id: str) -> None:
        task = asyncio.create_task(self._sync(session_id))
        self._tasks.add(task)
        self._syncs.setdefault(session_id, set()).add(task)

        def done(task: asyncio.Task) -> None:
            self._tasks.discard(task)
            syncs = self._syncs.get(session_id)
            if syncs is not None:
                syncs.discard(task)
                if not syncs:
                    del self._syncs[session_id]
        task.add_done_callback(done)

    async def _lookup(self, channel_id: str) -> list[SimulcastTarget] | None:
        request = SimulcastDestinationsRequest(channel_id=channel_id).to_json_bytes()
        for attempt in range(3):
            try:
                msg = await self._nats().request(CHANNELS_SIMULCAST_DESTINATIONS, request,
                                                 timeout=self.settings.simulcast_lookup_timeout_seconds)
                return SimulcastDestinationsReply.model_validate_json(msg.data).destinations
            except Exception as exc:  # noqa: BLE001  channels away: the session goes on without simulcast
                log.warning("simulcast destinations lookup failed",
                            extra={"channelId": channel_id, "attempt": attempt + 1, "errorType": type(exc).__name__})
                await asyncio.sleep(0.5 * 2 ** attempt)
        return None

    async def _sync(self, session_id: str) -> None:
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            channel_id = self._channels.get(session_id)
            if channel_id is None:
                return
            targets = await self._lookup(channel_id)
            if targets is None or session_id not in self._channels:
                return
            running = self._forwarders.setdefault(session_id, {})
            wanted = {t.id: t for t in targets}
            stale = [d for d, f in running.items()
                     if d not in wanted or f.target.url.get_secret_value() != wanted[d].url.get_secret_value()]
            await asyncio.gather(*(running.pop(d).stop() for d in stale), return_exceptions=True)
            # a session resumed after a restart may have ended since it was read, and its release
            # (which stops its forwarders) come and gone: nothing would stop what starts now
            if not await self._still_open(session_id) or session_id not in self._channels:
                self._channels.pop(session_id, None)
                if not running:
                    self._forwarders.pop(session_id, None)
                return
            for destination_id, target in wanted.items():
                if destination_id not in running:
                    forwarder = Forwarder(self.settings, session_id, target,
                                          self._reporter_for(session_id, channel_id))
                    running[destination_id] = forwarder
                    forwarder.start()
            if targets or stale:
                log.info("simulcast forwarding", extra={"sessionId": session_id, "destinations": len(running)})

    async def _still_open(self, session_id: str) -> bool:
        try:
            return await is_open(self._db(), session_id)
        except Exception as exc:  # noqa: BLE001  the database away: forward (the session's release still stops it)
            log.warning("simulcast session check failed", extra={"sessionId": session_id,
                                                                  "errorType": type(exc).__name__})
            return True

    def _reporter_for(self, session_id: str, channel_id: str) -> Report:
        def report(destination_id: str, state: SimulcastState, error: str | None) -> None:
            self._reports.put_nowait(SimulcastStateChanged(
                channel_id=channel_id, destination_id=destination_id, ingest_session_id=session_id,
                state=state, last_error=error, at=datetime.now(UTC)))
            if self._reporter is None or self._reporter.done():
                self._reporter = asyncio.create_task(self._drain_reports())
        return report

    async def _drain_reports(self) -> None:
        """Stage the reports in order, one transaction each (the outbox publishes them)."""
        while not self._reports.empty():
            event = self._reports.get_nowait()
            try:
                async with self._db().session() as session:
                    await stage_event(session, MEDIA_SIMULCAST_STATE_CHANGED, event, source=SOURCE,
                                      key=event.channel_id)
                    await session.commit()
            except Exception as exc:  # noqa: BLE001  a lost state report must not stop forwarding
                log.warning("simulcast state not recorded", extra={"destinationId": event.destination_id,
                                                                   "errorType": type(exc).__name__})

    async def stop(self, session_id: str) -> None:
        """The session ended: stop its forwarders (each reports idle). Idempotent."""
        self._channels.pop(session_id, None)
        # a lookup still retrying (channels away) holds the session's lock for seconds: on_publish_done
        # (nginx waits for its answer) must not wait it out, and nothing it found is wanted now
        syncs = list(self._syncs.get(session_id, ()))
        for task in syncs:
            task.cancel()
        await asyncio.gather(*syncs, return_exceptions=True)
        lock = self._locks.get(session_id)
        running = self._forwarders.pop(session_id, {})
        await asyncio.gather(*(f.stop() for f in running.values()), return_exceptions=True)
        if lock is not None:
            async with lock:  # a lookup in flight sees the session gone and starts nothing
                running = self._forwarders.pop(session_id, {})
            await asyncio.gather(*(f.stop() for f in running.values()), return_exceptions=True)
            self._locks.pop(session_id, None)

    async def close(self) -> None:
        # the lookups first: one in flight holds its session's lock through its retries (channels
        # away: up to three timeouts and 3.5 s of back-off), which stop() would wait out
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for session_id in list(self._channels):
            await self.stop(session_id)
        if self._reporter is not None:
            try:
                await asyncio.wait_for(self._reporter, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._reporter.cancel()


async def resume_simulcasts(db: Database, simulcasts: Simulcasts, settings: Settings) -> list[str]:
    """After a restart: forward this node's open sessions again, as on publish (the restart stopped
    their forwarders). A session whose encoder left while this service was down is still open (its
    on_publish_done found nobody; the liveness sweep ends it later) but has nothing to forward: it
    is skipped when nginx-rtmp's /stat says its publisher is gone. The session ids resumed."""
    if not simulcasts.enabled:
        return []
    sessions = await open_local_sessions(db, settings.ingest_node)
    if not sessions:
        return []
    publishing = await read_live_publishers(settings)  # None: unknown, every open session is resumed
    resumed = []
    for session in sessions:
        if publishing is not None and session.relay_name not in publishing:
            log.info("simulcast not resumed: the encoder left during the restart", extra={"sessionId": session.id})
            continue
        simulcasts.start(session.id, session.channel_id)  # a session already held is not started twice
        resumed.append(session.id)
    if resumed:
        log.info("simulcast resumed", extra={"count": len(resumed)})
    return resumed


class DestinationChanges(SubscriptionWorker):
    """`channel.destinations_updated` over core NATS (every node hears it; the one holding the
    channel's live session acts on it)."""

    __name__ = "simulcast-destination-changes"

    def __init__(self, simulcasts: Simulcasts):
        super().__init__()
        self.simulcasts = simulcasts

    async def subscribe(self, runtime):
        return await runtime.nats.subscribe(CHANNEL_DESTINATIONS_UPDATED, cb=self.handle)

    async def handle(self, msg) -> None:
        try:
            event = parse_event(msg.data)
        except Exception:  # noqa: BLE001  not ours to judge: the inbox consumers record bad events
            return
        if isinstance(event.data, DestinationsUpdated):
            self.simulcasts.refresh(event.data.channel_id)
