"""Hosted providers: the request bodies we send to Mux and Cloudflare Stream (unit, over
httpx.MockTransport), what their answers become, and the refusals that never reach them.
The whole path against a stand-in of their APIs is tests/e2e/test_providers_through_gateway.py."""

from __future__ import annotations

import json

import httpx
import pytest

from channels_service.config import Settings
from channels_service.providers.clients import CloudflareClient, MuxClient, ProviderError

CHANNEL = "6f1c1d2e-1111-4222-8333-944455556666"


def _settings(**over) -> Settings:
    base = {"database_url": "postgresql+asyncpg://x/y", "mux_token_id": "tid", "mux_token_secret": "tsecret",
            "mux_api_base_url": "https://mux.test", "cloudflare_account_id": "acc123",
            "cloudflare_api_token": "cftoken", "cloudflare_api_base_url": "https://cf.test/client/v4",
            "cloudflare_playback_base_url": "https://customer-abc.cloudflarestream.com"}
    return Settings(**{**base, **over})


class Recorder:
    def __init__(self, answer):
        self.requests: list[httpx.Request] = []
        self.answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def body(self, i: int = -1):
        content = self.requests[i].content
        return json.loads(content) if content else None


MUX_STREAM = {"id": "ls1", "stream_key": "key-1", "status": "idle", "srt_passphrase": "pass",
              "playback_ids": [{"policy": "signed", "id": "sig"}, {"policy": "public", "id": "pub"}]}


async def test_mux_create_sends_passthrough_and_public_playback_and_reads_the_answer():
    rec = Recorder(lambda r: httpx.Response(201, json={"data": MUX_STREAM}))
    made = await MuxClient(_settings(), httpx.MockTransport(rec)).create(CHANNEL)
    request = rec.requests[0]
    assert (request.method, str(request.url)) == ("POST", "https://mux.test/video/v1/live-streams")
    assert request.headers["authorization"] == httpx.BasicAuth("tid", "tsecret")._auth_header
    assert rec.body() == {"playback_policies": ["public"], "passthrough": CHANNEL,
                          "new_asset_settings": {"playback_policies": ["public"], "passthrough": CHANNEL}}
    assert (made.stream_id, made.stream_key, made.playback_id) == ("ls1", "key-1", "pub")
    assert made.rtmp_url == "rtmps://global-live.mux.com:443/app"
    assert made.srt_url == "srt://global-live.mux.com:6001?streamid=key-1&passphrase=pass"
    assert made.playback_url == "https://stream.mux.com/pub.m3u8"
    assert "key-1" not in repr(made)


async def test_mux_reset_complete_and_delete_hit_the_documented_paths_without_a_body():
    rec = Recorder(lambda r: httpx.Response(201 if r.url.path.endswith("key") else 200,
                                            json={"data": {**MUX_STREAM, "stream_key": "key-2"}}))
    client = MuxClient(_settings(), httpx.MockTransport(rec))
    assert (await client.reset_key("ls1")).stream_key == "key-2"
    await client.end("ls1")
    await client.delete("ls1")
    assert [(r.method, r.url.path, r.content) for r in rec.requests] == [
        ("POST", "/video/v1/live-streams/ls1/reset-stream-key", b""),
        ("PUT", "/video/v1/live-streams/ls1/complete", b""),
        ("DELETE", "/video/v1/live-streams/ls1", b"")]


CF_INPUT = {"uid": "0123456789abcdef0123456789abcdef",
            "rtmps": {"url": "rtmps://live.cloudflare.com:443/live/", "streamKey": "cfkey"},
            "srt": {"url": "srt://live.cloudflare.com:778", "streamId": "sid", "passphrase": "pp"}}


async def test_cloudflare_create_and_disable_send_meta_channel_id_with_the_bearer_token():
    rec = Recorder(lambda r: httpx.Response(200, json={"result": CF_INPUT, "success": True, "errors": [],
                                                       "messages": []}))
    client = CloudflareClient(_settings(), httpx.MockTransport(rec))
    made = await client.create(CHANNEL)
    await client.set_enabled(CF_INPUT["uid"], CHANNEL, False)
    create, disable = rec.requests
    assert (create.method, str(create.url)) == ("POST", "https://cf.test/client/v4/accounts/acc123/stream/live_inputs")
    assert create.headers["authorization"] == "Bearer cftoken"
    assert rec.body(0) == {"meta": {"name": f"channel {CHANNEL}", "channelId": CHANNEL},
                           "recording": {"mode": "automatic"}}
    assert (disable.method, disable.url.path) == ("PUT", f"/client/v4/accounts/acc123/stream/live_inputs/{CF_INPUT['uid']}")
    assert rec.body(1) == {"meta": {"name": f"channel {CHANNEL}", "channelId": CHANNEL},
                           "recording": {"mode": "automatic"}, "enabled": False}
    assert (made.stream_id, made.stream_key, made.rtmp_url) == (CF_INPUT["uid"], "cfkey", CF_INPUT["rtmps"]["url"])
    assert made.srt_url == "srt://live.cloudflare.com:778?passphrase=pp&streamid=sid"
    assert made.playback_url == f"https://customer-abc.cloudflarestream.com/{CF_INPUT['uid']}/manifest/video.m3u8"


@pytest.mark.parametrize(("answer", "status"), [
    (lambda r: httpx.Response(500, json={"error": {}}), 503),
    (lambda r: httpx.Response(429), 503),
    (lambda r: httpx.Response(401, json={"error": {"messages": ["tsecret"]}}), 502),
    (lambda r: httpx.Response(201, content=b"<html>"), 502),
    (lambda r: httpx.Response(201, json={"data": {"id": "x"}}), 502),  # no stream key
])
async def test_a_provider_failure_is_a_502_or_503_that_quotes_nothing(answer, status):
    with pytest.raises(ProviderError) as caught:
        await MuxClient(_settings(), httpx.MockTransport(Recorder(answer))).create(CHANNEL)
    assert caught.value.status == status
    assert "tsecret" not in caught.value.detail and "Mux" in caught.value.detail


async def test_an_unreachable_provider_is_a_503():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderError) as caught:
        await CloudflareClient(_settings(), httpx.MockTransport(refuse)).create(CHANNEL)
    assert caught.value.status == 503


# ---- through the service (no provider configured here) ---------------------------------------

async def test_unknown_or_unconfigured_providers_are_422_and_change_nothing(client, make_user, create_channel):
    owner = make_user()
    channel = await create_channel(owner)
    assert channel["provider"] == "local"
    r = await client.put(f"/api/channels/{channel['id']}", json={"provider": "youtube"}, headers=owner.headers)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    for provider, variables in (("mux", "MUX_TOKEN_ID"), ("cloudflare", "CLOUDFLARE_ACCOUNT_ID")):
        r = await client.put(f"/api/channels/{channel['id']}", json={"provider": provider}, headers=owner.headers)
        assert r.status_code == 422, r.text
        assert variables in r.json()["detail"] and r.json()["errors"][0]["type"] == "not_configured"
        r = await client.post("/api/channels", json={"name": f"On {provider}", "provider": provider},
                              headers=owner.headers)
        assert r.status_code == 422, r.text
    r = await client.get(f"/api/channels/{channel['id']}", headers=owner.headers)
    assert r.json()["provider"] == "local"
    r = await client.get("/api/channels", params={"owner": "me"}, headers=owner.headers)
    assert [c["id"] for c in r.json()["items"]] == [channel["id"]]
