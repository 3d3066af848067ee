"""Hosted providers through the gateway: a channel switched to Mux or Cloudflare Stream gets the
provider's live stream / live input (created on the local stand-in of their APIs,
fake_providers.py, which checks every request body against the documented fields), shows its
ingest URL and key, rotates through the provider, plays from the provider's playback id, and
ending the stream completes the Mux live stream."""

import hashlib
import hmac
import json
import time
import uuid

import pytest

from .helpers import Creator, problem, until

pytestmark = pytest.mark.e2e


def _wait(what, check):
    return until(what, check, timeout=20, every=0.2)


def _mux_webhook(gateway, secret: str, event_type: str, stream: dict, channel_id: str):
    body = json.dumps({"type": event_type, "id": str(uuid.uuid4()), "created_at": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "object": {"type": "live", "id": stream["id"]},
        "data": {"id": stream["id"], "status": "active", "passthrough": channel_id,
                 "playback_ids": stream["playback_ids"]}}).encode()
    t = int(time.time())
    signature = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return gateway.post("/api/webhooks/mux", content=body,
                        headers={"content-type": "application/json", "mux-signature": f"t={t},v1={signature}"})


def test_a_channel_on_mux_streams_rotates_plays_and_ends_through_mux(gateway, provider_api, mux_webhook_secret):
    c = Creator(gateway, "pv")
    cid, auth = c.channel["id"], c.auth
    local_key = gateway.get(f"/api/channels/{cid}/stream-key", headers=auth).json()["streamKey"]

    r = gateway.put(f"/api/channels/{cid}", json={"provider": "mux"}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["provider"] == "mux"
    [stream] = provider_api.by_passthrough(cid)
    [body] = [b for b in provider_api.calls_to("POST", r"^/video/v1/live-streams$")
              if b.get("passthrough") == cid]
    assert body == {"playback_policies": ["public"], "passthrough": cid,
                    "new_asset_settings": {"playback_policies": ["public"], "passthrough": cid}}

    r = gateway.get(f"/api/channels/{cid}/stream-key", headers=auth)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    key = r.json()
    playback_id = stream["playback_ids"][0]["id"]
    assert key["provider"] == "mux" and key["streamKey"] == stream["stream_key"] != local_key
    assert key["rtmpUrl"] == "rtmps://global-live.mux.com:443/app"
    assert key["srtUrl"].startswith("srt://global-live.mux.com:6001?streamid=")
    assert key["playbackUrl"] == f"https://stream.mux.com/{playback_id}.m3u8"

    r = gateway.post(f"/api/channels/{cid}/stream-key/rotate", headers=auth)
    assert r.status_code == 200, r.text
    assert provider_api.calls_to("POST", rf"^/video/v1/live-streams/{stream['id']}/reset-stream-key$") == [None]
    assert r.json()["streamKey"] == provider_api.mux[stream["id"]]["stream_key"] != key["streamKey"]
    assert gateway.get(f"/api/channels/{cid}/stream-key", headers=auth).json()["streamKey"] == r.json()["streamKey"]

    # Go live: Mux reports the broadcast; the stream plays from Mux's playback id
    r = gateway.post(f"/api/streams/{cid}/start", json={"title": "On Mux"}, headers=auth)
    assert r.status_code == 200, r.text
    stream_id = r.json()["id"]
    assert _mux_webhook(gateway, mux_webhook_secret, "video.live_stream.active", stream, cid).status_code == 200
    live = _wait("LIVE", lambda: (s := gateway.get(f"/api/streams/{stream_id}").json())["status"] == "LIVE" and s)
    assert live["hlsUrl"] == f"https://stream.mux.com/{playback_id}.m3u8"

    # End -> Mux's complete
    r = gateway.post(f"/api/streams/{stream_id}/end", headers=auth)
    assert r.status_code == 202, r.text
    _wait("Mux complete", lambda: provider_api.calls_to("PUT", rf"^/video/v1/live-streams/{stream['id']}/complete$"))
    assert provider_api.violations == []


def test_a_channel_on_cloudflare_gets_a_live_input_and_rotation_replaces_it(gateway, provider_api):
    c = Creator(gateway, "pv")
    cid, auth = c.channel["id"], c.auth
    r = gateway.put(f"/api/channels/{cid}", json={"provider": "cloudflare"}, headers=auth)
    assert r.status_code == 200, r.text
    [live_input] = provider_api.inputs_of(cid)
    assert {"meta": {"name": f"channel {cid}", "channelId": cid}, "recording": {"mode": "automatic"}} in \
        provider_api.calls_to("POST", r"/stream/live_inputs$")

    key = gateway.get(f"/api/channels/{cid}/stream-key", headers=auth).json()
    assert key["provider"] == "cloudflare"
    assert key["streamKey"] == live_input["rtmps"]["streamKey"]
    assert key["rtmpUrl"] == "rtmps://live.cloudflare.com:443/live/"
    assert key["srtUrl"].startswith("srt://live.cloudflare.com:778?passphrase=")
    assert key["playbackUrl"] == (f"https://customer-testcode.cloudflarestream.com/{live_input['uid']}"
                                  "/manifest/video.m3u8")
    assert key["streamKey"] not in gateway.get(f"/api/channels/{cid}").text

    # Cloudflare has no key reset: a new input replaces the old one, which is deleted
    r = gateway.post(f"/api/channels/{cid}/stream-key/rotate", headers=auth)
    assert r.status_code == 200, r.text
    [new_input] = provider_api.inputs_of(cid)
    assert new_input["uid"] != live_input["uid"]
    assert r.json()["streamKey"] == new_input["rtmps"]["streamKey"]
    assert new_input["uid"] in r.json()["playbackUrl"]
    assert provider_api.calls_to("DELETE", rf"/stream/live_inputs/{live_input['uid']}$") == [None]

    # back to local: the input is deleted and the local key answers again
    r = gateway.put(f"/api/channels/{cid}", json={"provider": "local"}, headers=auth)
    assert r.status_code == 200 and r.json()["provider"] == "local"
    assert provider_api.inputs_of(cid) == []
    key = gateway.get(f"/api/channels/{cid}/stream-key", headers=auth).json()
    assert key["provider"] == "local" and key["rtmpUrl"].startswith("rtmp://")
    assert provider_api.violations == []


def _cloudflare_notification(gateway, auth_secret: str, input_id: str, event_type: str):
    # Cloudflare's live-input notification: no meta, the channel is looked up by input id
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
    body = {"name": "Live Webhook", "text": f"Input ID: {input_id}\nEvent type: {event_type}",
            "data": {"notification_name": "Stream Live Input", "input_id": input_id, "event_type": event_type,
                     "updated_at": at}, "ts": int(time.time())}
    return gateway.post("/api/webhooks/cloudflare", json=body, headers={"cf-webhook-auth": auth_secret})


def test_a_cloudflare_channel_goes_live_from_its_notification_and_end_disables_the_input(
        gateway, provider_api, cloudflare_webhook_auth):
    c = Creator(gateway, "pv")
    cid, auth = c.channel["id"], c.auth
    assert gateway.put(f"/api/channels/{cid}", json={"provider": "cloudflare"}, headers=auth).status_code == 200
    [live_input] = provider_api.inputs_of(cid)
    uid = live_input["uid"]

    r = gateway.post(f"/api/streams/{cid}/start", json={"title": "On Cloudflare"}, headers=auth)
    assert r.status_code == 200, r.text
    stream_id = r.json()["id"]
    r = _cloudflare_notification(gateway, cloudflare_webhook_auth, uid, "live_input.connected")
    assert r.status_code == 200 and r.json() == {"status": "published"}, r.text
    live = _wait("LIVE", lambda: (s := gateway.get(f"/api/streams/{stream_id}").json())["status"] == "LIVE" and s)
    assert live["hlsUrl"] == f"https://customer-testcode.cloudflarestream.com/{uid}/manifest/video.m3u8"

    assert gateway.post(f"/api/streams/{stream_id}/end", headers=auth).status_code == 202
    _wait("input disabled", lambda: provider_api.cloudflare[uid]["enabled"] is False)
    assert provider_api.calls_to("PUT", rf"/stream/live_inputs/{uid}$")[-1]["enabled"] is False

    # the next Go live enables it again
    _wait("ended", lambda: gateway.get(f"/api/streams/{stream_id}").json()["status"] in ("ENDING", "ARCHIVED"))
    _wait("a new session", lambda: (r := gateway.post(f"/api/streams/{cid}/start", json={"title": "Again"},
                                                      headers=auth)).status_code == 200
          and r.json()["id"] != stream_id)
    _wait("input enabled", lambda: provider_api.cloudflare[uid]["enabled"] is True)
    assert provider_api.violations == []


def test_provider_failures_and_bad_values_change_nothing(gateway, provider_api):
    c = Creator(gateway, "pv")
    cid, auth = c.channel["id"], c.auth

    refused = problem(gateway.put(f"/api/channels/{cid}", json={"provider": "wowza"}, headers=auth), 422)
    assert any("provider" in str(e.get("field")) for e in refused["errors"])

    provider_api.fail_next("POST", r"^/video/v1/live-streams$", 500)
    problem(gateway.put(f"/api/channels/{cid}", json={"provider": "mux"}, headers=auth), 503)
    provider_api.fail_next("POST", r"/stream/live_inputs$", 401)
    problem(gateway.put(f"/api/channels/{cid}", json={"provider": "cloudflare"}, headers=auth), 502)
    assert gateway.get(f"/api/channels/{cid}").json()["provider"] == "local"
    assert gateway.get(f"/api/channels/{cid}/stream-key", headers=auth).json()["provider"] == "local"

    # a new channel whose provider call fails is not created at all
    provider_api.fail_next("POST", r"^/video/v1/live-streams$", 0)
    name = f"never-{uuid.uuid4().hex[:8]}"
    problem(gateway.post("/api/channels", json={"name": name, "provider": "mux"}, headers=auth), 503)
    assert gateway.get(f"/api/channels/{name}").status_code == 404
    r = gateway.post("/api/channels", json={"name": name, "provider": "mux"}, headers=auth)
    assert r.status_code == 201 and r.json()["provider"] == "mux"
    assert len(provider_api.by_passthrough(r.json()["id"])) == 1
