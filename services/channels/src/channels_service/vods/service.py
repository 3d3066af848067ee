"""VODs: the channel's archived broadcasts, recorded from the streams service's `stream.archived`."""

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events.streams import Stream
from servicekit.pagination import decode_cursor, encode_cursor
from servicekit.problems import Problem

from channels_service.channels.models import Channel
from channels_service.vods.models import ChannelVod, Vod


async def record(session: AsyncSession, channel: Channel, stream: Stream, archived_at: datetime) -> None:
    """Idempotent upsert keyed by the stream id (a re-sent archive updates the entry)."""
    if not stream.vod_url:
        return  # nothing to play back: not listed
    values = {"channel_id": channel.id, "title": stream.title, "vod_url": stream.vod_url,
              "duration": stream.duration, "start_time": stream.start_time, "end_time": stream.end_time,
              "thumbnail_url": stream.thumbnail_url, "archived_at": archived_at}
    stmt = insert(ChannelVod).values(id=stream.id, **values)
    await session.exec(stmt.on_conflict_do_update(index_elements=["id"], set_=values))


async def list_vods(session: AsyncSession, channel: Channel, limit: int,
                    cursor: str | None) -> tuple[list[Vod], str | None]:
    """Newest first, keyset-paginated on (archived_at, id)."""
    stmt = (select(ChannelVod).where(ChannelVod.channel_id == channel.id)
            .order_by(col(ChannelVod.archived_at).desc(), col(ChannelVod.id).desc()).limit(limit + 1))
    after = decode_cursor(cursor)
    if after:
        try:
            at, last = datetime.fromisoformat(after["at"]), after["id"]
            if not isinstance(last, str) or any(ord(c) < 32 for c in last):
                raise ValueError("bad id")
        except (KeyError, ValueError, TypeError):
            raise Problem(400, "The cursor is not valid; start again without it.") from None
        stmt = stmt.where((col(ChannelVod.archived_at) < at)
                          | ((col(ChannelVod.archived_at) == at) & (col(ChannelVod.id) < last)))
    rows = (await session.exec(stmt)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor({"at": rows[-1].archived_at.isoformat(), "id": rows[-1].id})
    return [Vod.of(r) for r in rows], next_cursor
