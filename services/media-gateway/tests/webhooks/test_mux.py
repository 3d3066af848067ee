"""Mux webhooks: signature over the raw body, replay window, dedup, ordering, translation.

Fixtures follow the documented shape (https://docs.mux.com/webhook-reference): {type, id,
created_at, object, environment, data}, the live stream or asset as `data`.
"""

import time
import uuid

import orjson
import pytest

from media_gateway.webhooks.signatures import sign

SECRET = "mux-test-signing-secret"  # conftest's MUX_WEBHOOK_SECRET
LIVE_STREAM_ID = "ZmvgW7NpNKnwy2vq1Y5Ypsk2Xbe5C6ot"
PLAYBACK_ID = "85g23u8jY3Ztb7JQ2Tj0202bA1WkNbCHx2"
MUX_STREAM_KEY = "3fa85f64-mux-stream-key-never-logged"


def live_stream_event(event_type: str, created_at: str, *, passthrough: str | None = "chan-mux",
                      event_id: str | None = None) -> dict:
    data = {
        "stream_key": MUX_STREAM_KEY,
        "status": "active" if event_type.endswith(("connected", "active")) else "idle",
        "reconnect_window": 60,
        "playback_ids": [{"policy": "signed", "id": "signedPlaybackId0001"}, {"policy": "public", "id": PLAYBACK_ID}],
        "new_asset_settings": {"playback_policies": ["public"], "passthrough": passthrough},
        "id": LIVE_STREAM_ID,
        "created_at": "1609452826",
        "latency_mode": "low",
        "max_continuous_duration": 43200,
    }
    if passthrough is not None:
        data["passthrough"] = passthrough
    return {
        "type": event_type,
        "request_id": None,
        "object": {"type": "live_stream", "id": LIVE_STREAM_ID},
        "id": event_id or str(uuid.uuid4()),
        "environment": {"name": "Production", "id": "j0863n"},
        "data": data,
        "created_at": created_at,
        "accessor_source": None,
        "accessor": None,
        "attempts": [],
    }


def asset_ready_event() -> dict:
    return {
        "type": "video.asset.ready",
        "object": {"type": "asset", "id": "4M8PmIrZP02Ud9ffSXsrBX3KoEpnuS4Mm"},
        "id": str(uuid.uuid4()),
        "environment": {"name": "Production", "id": "j0863n"},
        "data": {
            "id": "4M8PmIrZP02Ud9ffSXsrBX3KoEpnuS4Mm",
            "status": "ready",
            "duration": 1802.35,
            "max_stored_resolution": "HD",
            "max_stored_frame_rate": 30,
            "aspect_ratio": "16:9",
            "playback_ids": [{"policy": "public", "id": "assetPlaybackId0042"}],
            "tracks": [{"type": "video", "max_width": 1280, "max_height": 720}],
            "live_stream_id": LIVE_STREAM_ID,
            "is_live": False,
            "passthrough": "chan-mux",
            "created_at": "1609453026",
        },
        "created_at": "2024-05-01T10:31:00.000000Z",
    }


def signed(body: bytes, *, secret: str = SECRET, at: int | None = None) -> dict:
    t = int(time.time()) if at is None else at
    return {"content-type": "application/json", "mux-signature": f"t={t},v1={sign(secret, t, body)}"}


@pytest.fixture
def mux(client):
    async def _post(payload: dict | bytes, headers: dict | None = None):
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return await client.post("/api/webhooks/mux", content=body,
                                 headers=headers if headers is not None else signed(body))

    return _post


async def test_signed_connected_event_becomes_media_ingest_connected(mux, events):
    r = await mux(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00.000000Z"))
    assert r.status_code == 200
    assert r.json() == {"status": "published"}
    event = await events.wait_for("media.ingest.connected", lambda d: d["provider"] == "mux")
    assert event["data"] == {
        "channelId": "chan-mux", "provider": "mux", "ingestSessionId": LIVE_STREAM_ID,
        "at": "2024-05-01T10:00:00Z", "hlsUrl": f"https://stream.mux.com/{PLAYBACK_ID}.m3u8",
    }


async def test_replayed_delivery_changes_nothing(mux, client, outbox_count):
    body = orjson.dumps(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00Z"))
    headers = signed(body)
    assert (await client.post("/api/webhooks/mux", content=body, headers=headers)).json()["status"] == "published"
    again = await client.post("/api/webhooks/mux", content=body, headers=headers)
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    assert await outbox_count("media.ingest.connected") == 1


async def test_active_after_connected_is_the_same_state(mux, outbox_count):
    await mux(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00Z"))
    r = await mux(live_stream_event("video.live_stream.active", "2024-05-01T10:00:02Z"))
    assert r.json() == {"status": "unchanged"}
    assert await outbox_count("media.ingest.connected") == 1


async def test_out_of_order_connected_after_disconnected_is_dropped(mux, events, outbox_count):
    r = await mux(live_stream_event("video.live_stream.disconnected", "2024-05-01T10:05:00Z"))
    assert r.json() == {"status": "published"}
    late = await mux(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00Z"))
    assert late.status_code == 200
    assert late.json() == {"status": "outOfOrder"}
    assert await outbox_count("media.ingest.connected") == 0
    # idle after disconnected: same state, nothing new
    assert (await mux(live_stream_event("video.live_stream.idle", "2024-05-01T10:06:00Z"))).json() == {
        "status": "unchanged"}
    # a real reconnect later on is a new connected
    assert (await mux(live_stream_event("video.live_stream.connected", "2024-05-01T10:07:00Z"))).json() == {
        "status": "published"}
    await events.wait_for("media.ingest.connected", lambda d: d["at"] == "2024-05-01T10:07:00Z")


async def test_asset_ready_becomes_recording_ready(mux, events):
    assert (await mux(asset_ready_event())).json() == {"status": "published"}
    event = await events.wait_for("media.recording.ready")
    assert event["data"] == {"channelId": "chan-mux", "ingestSessionId": LIVE_STREAM_ID,
                             "vodUrl": "https://stream.mux.com/assetPlaybackId0042.m3u8",
                             "durationSeconds": 1802.35}


async def test_stale_signature_is_400_with_no_effect(mux, outbox_count):
    body = orjson.dumps(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00Z"))
    # the tolerance is 300 s; each stamp is taken just before its request and 60 s past the edge,
    # so a slow first request cannot bring the second one back inside the window
    for offset in (-360, 360):
        r = await mux(body, signed(body, at=int(time.time()) + offset))
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/problem+json")
    assert await outbox_count("media.ingest.connected") == 0


@pytest.mark.parametrize("headers", [
    {},
    {"mux-signature": "garbage"},
    {"mux-signature": "t=notanumber,v1=00"},
    {"mux-signature": f"t={int(time.time())}"},
    {"mux-signature": f"t={int(time.time())},v1={'0' * 64}"},
])
async def test_missing_or_bad_signature_is_400(mux, outbox_count, headers):
    body = orjson.dumps(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00Z"))
    r = await mux(body, {"content-type": "application/json", **headers})
    assert r.status_code == 400
    assert r.json()["status"] == 400
    assert await outbox_count("media.ingest.connected") == 0


async def test_signature_over_other_bytes_or_with_another_secret_is_400(mux):
    body = orjson.dumps(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00Z"))
    assert (await mux(body, signed(body, secret="some-other-secret"))).status_code == 400
    # same JSON, different bytes (the signature is over the raw body, not the parsed object)
    assert (await mux(body + b" ", signed(body))).status_code == 400


async def test_any_matching_v1_is_accepted(mux):
    body = orjson.dumps(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00Z"))
    t = int(time.time())
    header = f"t={t},v1={sign('previous-secret', t, body)},v1={sign(SECRET, t, body)}"
    assert (await mux(body, {"content-type": "application/json", "mux-signature": header})).status_code == 200


async def test_unconfigured_secret_is_503(make_client):
    async with make_client(mux_webhook_secret=None) as client:
        body = orjson.dumps(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00Z"))
        r = await client.post("/api/webhooks/mux", content=body, headers=signed(body))
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "not configured" in r.json()["detail"]


async def test_signed_but_malformed_bodies_are_400(mux):
    assert (await mux(b"not json")).status_code == 400
    assert (await mux(b"[1, 2]")).status_code == 400
    assert (await mux({"type": "video.live_stream.connected"})).status_code == 400


async def test_unmapped_and_unknown_events_are_acknowledged_without_events(mux, outbox_count):
    r = await mux(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00Z", passthrough=None))
    assert r.json() == {"status": "unmapped"}
    other = live_stream_event("video.live_stream.created", "2024-05-01T10:00:00Z")
    assert (await mux(other)).json() == {"status": "ignored"}
    assert await outbox_count("media.ingest.connected") == 0


async def test_mux_stream_key_is_never_logged(mux, caplog):
    caplog.set_level("DEBUG")
    await mux(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00Z"))
    await mux(live_stream_event("video.live_stream.connected", "2024-05-01T10:00:00Z"), {"mux-signature": "x"})
    assert caplog.records
    for record in caplog.records:
        assert MUX_STREAM_KEY not in record.getMessage()
        assert MUX_STREAM_KEY not in repr(record.__dict__)
