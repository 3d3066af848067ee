from datetime import UTC, datetime

import pytest
from contracts.base import WireModel
from contracts.events.clips import Clip, ClipDeleted
from contracts.events.subscriptions import (Subscription, SubscriptionChanged, SubscriptionStatus,
                                            SubscriptionTier)
from contracts.events import (
    Channel,
    ChannelBan,
    ChannelFilters,
    ChannelFollow,
    ChannelModerator,
    ChannelUnban,
    ChatMessage,
    ChatMessageDeleted,
    ChatPresence,
    ChatReport,
    ChatUser,
    IngestConnected,
    IngestDisconnected,
    IngestErrored,
    MediaProvider,
    RecordingReady,
    Stream,
    StreamEndRequested,
    StreamKeyRotated,
    DestinationsUpdated,
    SimulcastStateChanged,
    StreamStatus,
    StreamStatusChanged,
    StreamViewers,
    StreamVodRequested,
    ThumbnailUpdated,
    UserBlock,
    UserProfile,
    VodJoined,
)

AT = datetime(2025, 3, 14, 15, 9, 26, 535000, tzinfo=UTC)

_STREAM_FIELDS = {
    "id": "s1",
    "channel_id": "c1",
    "title": "Speedrun",
    "description": None,
    "status": StreamStatus.LIVE,
    "start_time": AT,
    "end_time": None,
    "viewer_count": 12,
    "peak_viewers": 40,
    "duration": None,
    "hls_url": "/hls/abc/index.m3u8",
    "thumbnail_url": None,
    "vod_url": None,
    "is_archived": False,
    "created_at": AT,
}


def _samples() -> dict[str, WireModel]:
    profile = UserProfile(user_id="u1", username="ada_l", display_name="Ada", avatar=None)
    block = UserBlock(blocker_id="u1", blocked_id="u2")
    channel = Channel(
        id="c1",
        slug="ada",
        name="Ada's channel",
        description="Mostly compilers",
        category="science",
        tags=["rust", "python"],
        avatar=None,
        banner="https://cdn.example/banner.png",
        is_public=True,
        owner_id="u1",
    )
    follow = ChannelFollow(channel_id="c1", user_id="u2")
    moderator = ChannelModerator(channel_id="c1", user_id="u3")
    ingest = {"channel_id": "c1", "provider": MediaProvider.MUX, "ingest_session_id": "i1", "at": AT}
    stream = Stream(**_STREAM_FIELDS)
    subscription = Subscription(id="b1", channel_id="c1", user_id="u2", tier=SubscriptionTier.VIP,
                                status=SubscriptionStatus.ACTIVE, renewal_date=AT)
    return {
        "user.registered": profile,
        "user.updated": profile.model_copy(update={"avatar": "https://cdn.example/a.png"}),
        "user.blocked": block,
        "user.unblocked": block,
        "channel.created": channel,
        "channel.updated": channel,
        "channel.followed": follow,
        "channel.unfollowed": follow,
        "channel.stream_key_rotated": StreamKeyRotated(channel_id="c1", rotated_at=AT),
        "channel.destinations_updated": DestinationsUpdated(channel_id="c1", at=AT),
        "media.simulcast.state_changed": SimulcastStateChanged(
            channel_id="c1", destination_id="d1", ingest_session_id="s1", state="failed",
            last_error="Connection refused", at=AT),
        "channel.filters_updated": ChannelFilters(
            channel_id="c1",
            banned_words=["spoiler"],
            profanity_filter=True,
            slow_mode_seconds=5,
            followers_only=False,
        ),
        "channel.moderator_added": moderator,
        "channel.moderator_removed": moderator,
        "channel.user_banned": ChannelBan(channel_id="c1", user_id="u4", until=AT, reason="spam"),
        "channel.user_unbanned": ChannelUnban(channel_id="c1", user_id="u4"),
        "media.ingest.connected": IngestConnected(**ingest, hls_url="/hls/abc/index.m3u8"),
        "media.ingest.disconnected": IngestDisconnected(**ingest),
        "media.ingest.errored": IngestErrored(**ingest, error="encoder sent no video"),
        "media.recording.ready": RecordingReady(
            channel_id="c1", ingest_session_id="i1", vod_url="/vod/abc.mp4", duration_seconds=3600.5
        ),
        "media.thumbnail.updated": ThumbnailUpdated(channel_id="c1", url="/thumbs/abc.jpg"),
        "media.vod.joined": VodJoined(
            stream_id="s1", channel_id="c1", ingest_session_ids=["i1", "i2"], vod_url="/vod/s1.mp4",
            duration_seconds=7200.25, reencoded=False,
        ),
        "stream.created": stream.model_copy(update={"status": StreamStatus.OFFLINE, "start_time": None}),
        "stream.started": stream,
        "stream.status_changed": StreamStatusChanged(**_STREAM_FIELDS, previous_status=StreamStatus.OFFLINE),
        "stream.ended": stream.model_copy(
            update={"status": StreamStatus.ENDING, "end_time": AT, "duration": 3600}
        ),
        "stream.archived": stream.model_copy(
            update={"status": StreamStatus.ARCHIVED, "vod_url": "/vod/abc.mp4", "is_archived": True}
        ),
        "stream.viewers": StreamViewers(stream_id="s1", channel_id="c1", count=12, peak=40),
        "stream.end_requested": StreamEndRequested(stream_id="s1", channel_id="c1"),
        "stream.vod_requested": StreamVodRequested(stream_id="s1", channel_id="c1", ingest_session_ids=["i1", "i2"]),
        "clip.created": Clip(id="k1", channel_id="c1", stream_id="s1", title="Nice", url="http://m/clips/k1.mp4",
                             thumbnail_url=None, duration_seconds=10, creator="u1", created_at=AT),
        "clip.deleted": ClipDeleted(id="k1", channel_id="c1", deleted_by="u2"),
        "subscription.created": subscription,
        "subscription.changed": SubscriptionChanged(
            **subscription.model_dump(), previous_tier=SubscriptionTier.BASIC,
            previous_status=SubscriptionStatus.ACTIVE),
        "subscription.cancelled": subscription.model_copy(update={"status": SubscriptionStatus.CANCELLED}),
        "subscription.expired": subscription.model_copy(update={"status": SubscriptionStatus.EXPIRED}),
        "chat.message": ChatMessage(
            id="m1",
            seq=7,
            channel_id="c1",
            stream_id="s1",
            user=ChatUser(id="u2", username="bob", display_name="Bob", badges=["moderator"]),
            content="hello",
            created_at=AT,
            deleted_at=None,
        ),
        "chat.deleted": ChatMessageDeleted(message_id="m1", channel_id="c1", seq=8),
        "chat.report.created": ChatReport(
            id="r1", channel_id="c1", reporter_id="u2", message_id="m1", reason="spam", created_at=AT
        ),
        "chat.presence": ChatPresence(edge_id="edge-1", channel_id="c1", connections=120, users=30, at=AT),
    }


@pytest.fixture(scope="session")
def samples() -> dict[str, WireModel]:
    """One valid payload per event type."""
    return _samples()
