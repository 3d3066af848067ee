"""Clips: asked for through the API (202), cut by `ClipCutter` in the background, stored in the
object store beside a still, announced as `clip.created` once playable.

A live clip is the last `durationSeconds` of the stream's HLS (the media gateway's LL-HLS origin
keeps the recent segments in memory); an archived one is cut from the recording from
`startSeconds`. ffmpeg copies the streams (`-c copy`), so nothing is re-encoded and the cut falls
on the nearest key frames (a second or two either side with the usual 1-2 s GOP).
"""

import asyncio
import logging
import math
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from contracts.events.channels import ChannelModerator as ModeratorPayload
from contracts.events.clips import ClipDeleted
from contracts.subjects import CHANNEL_MODERATOR_ADDED, CHANNEL_MODERATOR_REMOVED, CLIP_CREATED, CLIP_DELETED
from servicekit.db import libpq_dsn
from servicekit.notify import NotifyListener
from servicekit.outbox import stage_event
from servicekit.pagination import decode_cursor, encode_cursor
from servicekit.problems import Problem
from servicekit.ratelimit import RateLimiter

from streams_service.channels import service as channels
from streams_service.clips.models import ChannelModerator, Clip, ClipCreate, ClipPublic, ClipStatus
from streams_service.config import Settings
from streams_service.schemas import clean_id
from streams_service.streams import service as streams
from streams_service.streams.lifecycle import StreamStatus

SOURCE = "streams"
MODERATOR_EVENTS = (CHANNEL_MODERATOR_ADDED, CHANNEL_MODERATOR_REMOVED)
log = logging.getLogger("streams.clips")


def now() -> datetime:
    return datetime.now(UTC)


# ---- the API ----------------------------------------------------------------------------------

async def create(session: AsyncSession, settings: Settings, limiter: RateLimiter, caller_id: str,
                 body: ClipCreate) -> Clip:
    """Check the request against the stream, count it against the caller's limit, and store the
    clip as processing. Nothing is stored for a refused request."""
    stream = await streams.get(session, body.stream_id)
    if stream is None:
        raise Problem(404, "No such stream.")
    status = StreamStatus(stream.status)
    if status == StreamStatus.LIVE and stream.hls_url:
        if body.start_seconds is not None:
            raise Problem(422, "startSeconds is only for archived streams: a live clip is the last "
                               "durationSeconds of the stream.",
                          errors=[{"field": "startSeconds", "message": "not for a live stream", "type": "value_error"}])
        source, live, start = stream.hls_url, True, None
    elif status == StreamStatus.ARCHIVED and stream.vod_url:
        start = body.start_seconds or 0.0
        source, live = stream.vod_url, False
        # the recording's own length: the stream's wall-clock duration counts the reconnect window
        # and the time before the encoder's first frame
        length = await recording_length(settings, source)
        if length is None:
            length = stream.duration
        if length is not None and start >= length:
            raise Problem(422, f"startSeconds must be less than the recording's length ({length:.0f} s).",
                          errors=[{"field": "startSeconds", "message": "outside the recording", "type": "value_error"}])
    elif status == StreamStatus.ARCHIVED:
        raise Problem(409, "This stream has no recording to clip.")
    else:
        raise Problem(409, "Only a live stream or an archived stream's recording can be clipped.")
    verdict = await limiter.hit(f"clips:{caller_id}", settings.clip_rate_limit, settings.clip_rate_window_seconds)
    if not verdict.allowed:
        raise Problem(429, "You are making clips too fast; try again later.",
                      headers={"Retry-After": str(verdict.retry_after)})
    clip = Clip(channel_id=stream.channel_id, stream_id=stream.id, title=body.title, creator=caller_id,
                source_url=source, live=live, start_seconds=start, duration_seconds=body.duration_seconds)
    session.add(clip)
    await session.flush()
    await session.refresh(clip)
    # wakes the cutters at commit (a live clip should be cut while its window is still there)
    await session.exec(text("NOTIFY clips_pending"))
    return clip


async def recording_length(settings: Settings, url: str) -> float | None:
    """Seconds of the recording at `url` (ffprobe reads its header), None when it cannot tell."""
    source = urljoin(settings.clip_source_base_url or settings.public_base_url, url)
    try:
        proc = await asyncio.create_subprocess_exec(
            settings.ffprobe_binary, "-v", "error", "-rw_timeout", str(int(settings.clip_read_timeout_seconds * 1e6)),
            "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", source,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), settings.clip_read_timeout_seconds)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    try:
        return float(out.decode().strip()) if proc.returncode == 0 else None
    except ValueError:
        return None


def _parse(clip_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(clip_id)
    except (ValueError, TypeError, AttributeError):
        return None


async def get_or_raise(session: AsyncSession, clip_id: str, *, for_update: bool = False) -> Clip:
    cid = _parse(clip_id)
    clip = None if cid is None else await session.get(Clip, cid, with_for_update=for_update or None)
    if clip is None:
        raise Problem(404, "No such clip.")
    return clip


async def is_moderator(session: AsyncSession, channel_id: str, user_id: str) -> bool:
    row = await session.get(ChannelModerator, (channel_id, user_id))
    return bool(row and row.present)


async def delete(session: AsyncSession, clip_id: str, caller_id: str) -> Clip:
    """Its creator, the channel's owner or one of its moderators; `clip.deleted`. The files go with
    the row (the caller deletes them after the commit)."""
    clip = await get_or_raise(session, clip_id, for_update=True)
    if clip.creator != caller_id:
        channel = await channels.get(session, clip.channel_id)
        owner = channel.owner_id if channel else None
        if owner != caller_id and not await is_moderator(session, clip.channel_id, caller_id):
            raise Problem(403, "Only the clip's creator, the channel's owner or a moderator can delete it.")
    await session.delete(clip)
    await stage_event(session, CLIP_DELETED, ClipDeleted(id=str(clip.id), channel_id=clip.channel_id,
                                                         deleted_by=caller_id), source=SOURCE, key=str(clip.id))
    return clip


async def list_for_channel(session: AsyncSession, channel_id: str, limit: int, cursor: str | None,
                           lookup: channels.ChannelLookup | None) -> tuple[list[Clip], str | None]:
    """A channel's ready clips, newest first (processing and failed ones are only seen by id)."""
    cid = clean_id(channel_id)
    if cid is None or await channels.get(session, cid, lookup) is None:
        raise Problem(404, "No such channel.")
    stmt = select(Clip).where(Clip.channel_id == cid, Clip.status == ClipStatus.READY.value)
    after = decode_cursor(cursor)
    if after:
        try:
            at, last = datetime.fromisoformat(after["at"]), uuid.UUID(after["id"])
        except (KeyError, ValueError, TypeError, AttributeError):
            raise Problem(400, "The cursor is not valid; start again without it.") from None
        stmt = stmt.where((col(Clip.created_at) < at) | ((col(Clip.created_at) == at) & (col(Clip.id) < last)))
    rows = list((await session.exec(stmt.order_by(col(Clip.created_at).desc(), col(Clip.id).desc())
                                    .limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor({"at": rows[-1].created_at.isoformat(), "id": str(rows[-1].id)})
    return rows, next_cursor


def object_keys(clip_id: uuid.UUID | str) -> tuple[str, str]:
    return f"clips/{clip_id}.mp4", f"clips/{clip_id}.jpg"


# ---- the moderator projection -----------------------------------------------------------------

async def handle_moderator_event(session: AsyncSession, event: Envelope) -> None:
    if event.type not in MODERATOR_EVENTS or not isinstance(event.data, ModeratorPayload):
        return
    data = event.data
    values = {"present": event.type == CHANNEL_MODERATOR_ADDED, "at": event.time}
    await session.exec(insert(ChannelModerator).values(channel_id=data.channel_id, user_id=data.user_id, **values)
                       .on_conflict_do_update(index_elements=["channel_id", "user_id"], set_=values,
                                              where=col(ChannelModerator.at) <= event.time))


# ---- cutting ------------------------------------------------------------------------------------

class CutFailed(RuntimeError):
    pass


async def _run(args: list[str], timeout: float) -> None:
    proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CutFailed(f"ffmpeg took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise CutFailed("ffmpeg failed: " + err.decode(errors="replace").strip().splitlines()[-1][:300]
                        if err.strip() else f"ffmpeg exited with {proc.returncode}")


def cut_command(settings: Settings, clip: Clip, source: str, out: Path) -> list[str]:
    common = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    if clip.live:
        # start far enough back in the live playlist for the clip to be there already (segments are
        # at least a second), instead of waiting for the stream to play it again
        back = math.ceil(clip.duration_seconds / settings.clip_live_segment_seconds) + 1
        inp = ["-live_start_index", str(-back), "-i", source]
    else:
        inp = ["-ss", f"{clip.start_seconds or 0:.3f}", "-i", source]
    return [settings.ffmpeg_binary, *common, "-rw_timeout", str(int(settings.clip_read_timeout_seconds * 1e6)),
            *inp, "-t", str(clip.duration_seconds), "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy",
            "-movflags", "+faststart", "-f", "mp4", str(out)]


def thumbnail_command(settings: Settings, clip_file: Path, out: Path) -> list[str]:
    return [settings.ffmpeg_binary, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(clip_file),
            "-frames:v", "1", "-vf", "scale=-2:360", "-q:v", "4", str(out)]


class ClipCutter:
    """Takes processing clips (one at a time per replica, SKIP LOCKED across replicas), cuts,
    stores, and marks them ready (`clip.created`) or failed."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self.listener: NotifyListener | None = None

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def __call__(self, rt) -> None:
        # woken by `NOTIFY clips_pending` on every queued clip; the poll finds stale claims (a
        # cutter that died) and covers the listener's outages, at clip_poll_seconds while it is down
        self.listener = NotifyListener(libpq_dsn(rt.db.url), "clips_pending", self._wake, name="clips listener")
        listener = asyncio.create_task(self.listener.run())
        try:
            while not self._stop.is_set():
                self._wake.clear()  # before the claim: a NOTIFY during it means "look again"
                if await self.cut_one(rt):
                    continue
                s = self.settings
                wait = max(s.clip_listen_poll_seconds, s.clip_poll_seconds) if self.listener.listening \
                    else s.clip_poll_seconds
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except TimeoutError:
                    pass
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _claim(self, rt) -> Clip | None:
        stale = now() - timedelta(seconds=self.settings.clip_cut_timeout_seconds * 2)
        async with rt.db.session() as session:
            clip = (await session.exec(
                select(Clip).where(Clip.status == ClipStatus.PROCESSING.value,
                                   (col(Clip.claimed_at).is_(None)) | (col(Clip.claimed_at) < stale))
                .order_by(col(Clip.created_at)).limit(1).with_for_update(skip_locked=True))).first()
            if clip is None:
                return None
            clip.claimed_at = now()
            session.add(clip)
            await session.commit()
            await session.refresh(clip)
            return clip

    async def cut_one(self, rt) -> bool:
        clip = await self._claim(rt)
        if clip is None:
            return False
        store = rt.store
        video_key, still_key = object_keys(clip.id)
        source = urljoin(self.settings.clip_source_base_url or self.settings.public_base_url, clip.source_url)
        try:
            with tempfile.TemporaryDirectory(prefix="clip-") as tmp:
                out, still = Path(tmp) / "clip.mp4", Path(tmp) / "still.jpg"
                await _run(cut_command(self.settings, clip, source, out), self.settings.clip_cut_timeout_seconds)
                if not out.exists() or out.stat().st_size == 0:
                    raise CutFailed("ffmpeg wrote no clip")
                await store.put_file(video_key, out, "video/mp4")
                thumbnail_url = None
                try:
                    await _run(thumbnail_command(self.settings, out, still), self.settings.clip_cut_timeout_seconds)
                    thumbnail_url = await store.put(still_key, still.read_bytes(), "image/jpeg")
                except (CutFailed, OSError) as exc:
                    log.warning("clip still failed; the clip has none", extra={"clipId": str(clip.id),
                                                                                 "error": str(exc)})
            url = store.url_for(video_key)
        except (CutFailed, OSError) as exc:
            log.warning("clip failed", extra={"clipId": str(clip.id), "error": str(exc)})
            await self._finish(rt, clip.id, ClipStatus.FAILED, error=str(exc)[:500])
            return True
        except Exception as exc:  # noqa: BLE001  the store refused: the clip fails, the cutter goes on
            log.warning("clip could not be stored", extra={"clipId": str(clip.id), "error": type(exc).__name__})
            await self._finish(rt, clip.id, ClipStatus.FAILED, error=f"store: {type(exc).__name__}")
            return True
        if not await self._finish(rt, clip.id, ClipStatus.READY, url=url, thumbnail_url=thumbnail_url):
            # deleted while it was being cut: its files must not stay behind
            for key in (video_key, still_key):
                try:
                    await store.delete(key)
                except Exception:  # noqa: BLE001, S112  retention is not this loop's job
                    continue
        return True

    async def _finish(self, rt, clip_id: uuid.UUID, status: ClipStatus, *, url: str | None = None,
                      thumbnail_url: str | None = None, error: str | None = None) -> bool:
        async with rt.db.session() as session:
            clip = await session.get(Clip, clip_id, with_for_update=True)
            if clip is None:
                return False
            clip.status, clip.url, clip.thumbnail_url, clip.error = status.value, url, thumbnail_url, error
            session.add(clip)
            if status == ClipStatus.READY:
                await session.flush()
                await session.refresh(clip)
                await stage_event(session, CLIP_CREATED, ClipPublic.of(clip).to_payload(), source=SOURCE,
                                  key=str(clip.id))
            await session.commit()
            return True
