"""Cloudflare Stream webhooks: live-input notifications (cf-webhook-auth) and video/recording
webhooks (Webhook-Signature), with fixtures in the documented shapes:
https://developers.cloudflare.com/stream/stream-live/webhooks/ and
https://developers.cloudflare.com/stream/manage-video-library/using-webhooks/
"""

import time

import orjson
import pytest

from media_gateway.webhooks.signatures import sign

AUTH = "cf-live-input-shared-secret"  # conftest's CLOUDFLARE_WEBHOOK_AUTH
SECRET = "cf-video-signing-secret"  # conftest's CLOUDFLARE_WEBHOOK_SECRET
INPUT_ID = "eb222fcca08eeb1ae84c981ebe8aeeb6"  # mapped to chan-cf-mapped in conftest
VIDEO_UID = "dd5d531a12de0c724bd1275a3b2bc9c6"


def live_notification(event_type: str, updated_at: str, *, input_id: str = INPUT_ID, extra: dict | None = None):
    return {
        "name": "Live Webhook Test",
        "text": f"Notification type: Stream Live Input\nInput ID: {input_id}\nEvent type: {event_type}\n"
                f"Updated at: {updated_at}",
        "data": {"notification_name": "Stream Live Input", "input_id": input_id, "event_type": event_type,
                 "updated_at": updated_at, **(extra or {})},
        "ts": 1642074233,
    }


def recording_ready(*, state: str = "ready", ready: bool = True, meta: dict | None = None) -> dict:
    return {
        "uid": VIDEO_UID,
        "creator": None,
        "thumbnail": f"https://customer-f33zs165nr7gyfy4.cloudflarestream.com/{VIDEO_UID}/thumbnails/thumbnail.jpg",
        "thumbnailTimestampPct": 0,
        "readyToStream": ready,
        "status": {"state": state, "pctComplete": "100.000000", "errorReasonCode": "", "errorReasonText": ""},
        "meta": meta if meta is not None else {"name": "Live recording", "channelId": "chan-cf"},
        "created": "2024-05-01T10:00:00.474936Z",
        "modified": "2024-05-01T11:02:21.076571Z",
        "size": 4190963,
        "preview": f"https://customer-f33zs165nr7gyfy4.cloudflarestream.com/{VIDEO_UID}/watch",
        "allowedOrigins": [],
        "requireSignedURLs": False,
        "uploaded": "2024-05-01T10:00:00.474936Z",
        "duration": 3722.5,
        "input": {"width": 1920, "height": 1080},
        "playback": {
            "hls": f"https://customer-f33zs165nr7gyfy4.cloudflarestream.com/{VIDEO_UID}/manifest/video.m3u8",
            "dash": f"https://customer-f33zs165nr7gyfy4.cloudflarestream.com/{VIDEO_UID}/manifest/video.mpd",
        },
        "watermark": None,
        "liveInput": INPUT_ID,
    }


def signed(body: bytes, *, secret: str = SECRET, at: int | None = None) -> dict:
    t = int(time.time()) if at is None else at
    return {"content-type": "application/json", "webhook-signature": f"time={t},sig1={sign(secret, t, body)}"}


@pytest.fixture
def cf(client):
    async def _post(payload: dict | bytes, headers: dict):
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return await client.post("/api/webhooks/cloudflare", content=body, headers=headers)

    return _post


LIVE_AUTH = {"content-type": "application/json", "cf-webhook-auth": AUTH}


async def test_live_input_connected_with_the_shared_secret(cf, events):
    r = await cf(live_notification("live_input.connected", "2022-01-13T11:43:41.855717910Z"), LIVE_AUTH)
    assert r.status_code == 200
    assert r.json() == {"status": "published"}
    event = await events.wait_for("media.ingest.connected", lambda d: d["provider"] == "cloudflare")
    assert event["data"]["channelId"] == "chan-cf-mapped"  # input id -> channel from the configured map
    assert event["data"]["ingestSessionId"] == INPUT_ID
    assert event["data"]["at"] == "2022-01-13T11:43:41.855717Z"


async def test_meta_channel_id_wins_over_the_map(cf, events):
    payload = live_notification("live_input.connected", "2022-01-13T11:43:41Z",
                                extra={"meta": {"channelId": "chan-from-meta"}})
    assert (await cf(payload, LIVE_AUTH)).json() == {"status": "published"}
    await events.wait_for("media.ingest.connected", lambda d: d["channelId"] == "chan-from-meta")


async def test_live_input_errored_becomes_media_ingest_errored(cf, events):
    payload = live_notification("live_input.errored", "2022-01-13T11:45:00Z", extra={
        "live_input_errored": {"error": {"code": "ERR_GOP_OUT_OF_RANGE",
                                         "message": "Input GOP size or keyframe interval is out of range."},
                               "video_codec": "", "audio_codec": ""}})
    assert (await cf(payload, LIVE_AUTH)).json() == {"status": "published"}
    event = await events.wait_for("media.ingest.errored")
    assert event["data"]["error"] == "Input GOP size or keyframe interval is out of range."


async def test_live_notifications_are_deduplicated_and_ordered(cf, outbox_count):
    disconnected = live_notification("live_input.disconnected", "2022-01-13T11:50:00Z")
    assert (await cf(disconnected, LIVE_AUTH)).json() == {"status": "published"}
    assert (await cf(disconnected, LIVE_AUTH)).json() == {"status": "duplicate"}
    late = live_notification("live_input.connected", "2022-01-13T11:43:41Z")
    assert (await cf(late, LIVE_AUTH)).json() == {"status": "outOfOrder"}
    assert await outbox_count("media.ingest.connected") == 0
    assert await outbox_count("media.ingest.disconnected") == 1


@pytest.mark.parametrize("value", ["wrong", AUTH + "x", AUTH[:-1], ""])
async def test_wrong_shared_secret_is_400(cf, outbox_count, value):
    r = await cf(live_notification("live_input.connected", "2022-01-13T11:43:41Z"),
                 {"content-type": "application/json", "cf-webhook-auth": value})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await outbox_count("media.ingest.connected") == 0


async def test_no_credentials_at_all_is_400(cf):
    r = await cf(live_notification("live_input.connected", "2022-01-13T11:43:41Z"),
                 {"content-type": "application/json"})
    assert r.status_code == 400


async def test_signed_recording_becomes_recording_ready(cf, events):
    body = orjson.dumps(recording_ready())
    r = await cf(body, signed(body))
    assert r.json() == {"status": "published"}
    event = await events.wait_for("media.recording.ready")
    assert event["data"] == {
        "channelId": "chan-cf", "ingestSessionId": INPUT_ID, "durationSeconds": 3722.5,
        "vodUrl": f"https://customer-f33zs165nr7gyfy4.cloudflarestream.com/{VIDEO_UID}/manifest/video.m3u8",
    }
    assert (await cf(body, signed(body))).json() == {"status": "duplicate"}


async def test_recording_without_meta_maps_through_its_live_input(cf, events):
    body = orjson.dumps(recording_ready(meta={"name": "no channel here"}))
    assert (await cf(body, signed(body))).json() == {"status": "published"}
    await events.wait_for("media.recording.ready", lambda d: d["channelId"] == "chan-cf-mapped")


async def test_recording_still_processing_is_ignored(cf, outbox_count):
    body = orjson.dumps(recording_ready(state="inprogress", ready=False))
    assert (await cf(body, signed(body))).json() == {"status": "ignored"}
    assert await outbox_count("media.recording.ready") == 0


async def test_bad_or_stale_recording_signatures_are_400(cf, outbox_count):
    body = orjson.dumps(recording_ready())
    assert (await cf(body, signed(body, secret="not-the-secret"))).status_code == 400
    assert (await cf(body, signed(body, at=int(time.time()) - 301))).status_code == 400
    assert (await cf(body, {"webhook-signature": "time=1,sig1"})).status_code == 400
    assert (await cf(body, {"webhook-signature": f"time={int(time.time())},v1=abc"})).status_code == 400
    # the live shared secret does not stand in for a signature, nor the reverse
    assert (await cf(body, {**signed(body, secret=AUTH)})).status_code == 400
    assert await outbox_count("media.recording.ready") == 0


async def test_unconfigured_secrets_are_503(make_client):
    async with make_client(cloudflare_webhook_auth=None, cloudflare_webhook_secret=None) as client:
        live = orjson.dumps(live_notification("live_input.connected", "2022-01-13T11:43:41Z"))
        for headers in (LIVE_AUTH, signed(live), {"content-type": "application/json"}):
            r = await client.post("/api/webhooks/cloudflare", content=live, headers=headers)
            assert r.status_code == 503, headers
            assert "not configured" in r.json()["detail"]
    async with make_client(cloudflare_webhook_secret=None) as client:
        body = orjson.dumps(recording_ready())
        assert (await client.post("/api/webhooks/cloudflare", content=body, headers=signed(body))).status_code == 503
        # the other half still works
        r = await client.post("/api/webhooks/cloudflare", content=live, headers=LIVE_AUTH)
        assert r.status_code == 200


async def test_oversized_body_is_413(make_client):
    async with make_client(webhook_max_body_bytes=1024) as client:
        body = orjson.dumps(recording_ready(meta={"padding": "x" * 2048}))
        assert (await client.post("/api/webhooks/cloudflare", content=body, headers=signed(body))).status_code == 413


# ---- inputs the map does not name: channels is asked (channels.provider.lookup) --------------

UNMAPPED_INPUT = "0f0e0d0c0b0a09080706050403020100"


async def test_an_input_missing_from_the_map_is_looked_up_in_channels(cf, events, nc):
    from contracts.requests import ProviderLookupReply, ProviderLookupRequest

    asked: list[ProviderLookupRequest] = []

    async def answer(msg):
        asked.append(ProviderLookupRequest.model_validate_json(msg.data))
        await msg.respond(ProviderLookupReply(found=True, channel_id="chan-from-channels").to_json_bytes())

    sub = await nc.subscribe("channels.provider.lookup", cb=answer)
    await nc.flush()
    try:
        payload = live_notification("live_input.connected", "2022-01-13T11:43:41Z", input_id=UNMAPPED_INPUT)
        assert (await cf(payload, LIVE_AUTH)).json() == {"status": "published"}
    finally:
        await sub.unsubscribe()
    event = await events.wait_for("media.ingest.connected", lambda d: d["ingestSessionId"] == UNMAPPED_INPUT)
    assert event["data"]["channelId"] == "chan-from-channels"
    assert [(a.provider, a.stream_id) for a in asked] == [("cloudflare", UNMAPPED_INPUT)]


async def test_without_an_answer_from_channels_the_notification_is_503_and_not_recorded(cf, nc, outbox_count):
    payload = live_notification("live_input.connected", "2022-01-13T11:50:00Z", input_id=UNMAPPED_INPUT)
    r = await cf(payload, LIVE_AUTH)
    assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
    assert await outbox_count("media.ingest.connected") == 0

    async def not_ours(msg):
        from contracts.requests import ProviderLookupReply
        await msg.respond(ProviderLookupReply(found=False).to_json_bytes())

    sub = await nc.subscribe("channels.provider.lookup", cb=not_ours)
    await nc.flush()
    try:  # the same delivery again is processed (nothing was recorded), now as unmapped
        assert (await cf(payload, LIVE_AUTH)).json() == {"status": "unmapped"}
    finally:
        await sub.unsubscribe()
