"""End and Go live for a Cloudflare channel, through the `channels-provider-control` inbox
consumer: `stream.end_requested` disables the live input, the next `stream.created` enables it
again. The provider is the local stand-in of its API (tests/e2e/fake_providers.py, loaded by
path), the events go through the real JetStream."""

from __future__ import annotations

import importlib.util
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts.events.streams import Stream, StreamEndRequested, StreamStatus

FAKE = Path(__file__).resolve().parents[3] / "tests" / "e2e" / "fake_providers.py"


@pytest.fixture(scope="module")
def provider_api():
    spec = importlib.util.spec_from_file_location("channels_fake_providers", FAKE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with module.FakeProviders() as fake:
        yield fake


@pytest.fixture
def channels_settings(channels_settings, provider_api):
    return channels_settings.model_copy(update={k.lower(): v for k, v in provider_api.env().items()})


def _created(channel_id: str) -> Stream:
    now = datetime.now(UTC)
    return Stream(id=str(uuid.uuid4()), channel_id=channel_id, title="Again", description=None,
                  status=StreamStatus.OFFLINE, start_time=None, end_time=None, viewer_count=0, peak_viewers=0,
                  duration=None, hls_url=None, thumbnail_url=None, vod_url=None, is_archived=False, created_at=now)


async def test_ending_disables_the_cloudflare_input_and_go_live_enables_it(
        client, make_user, create_channel, send_event, eventually, provider_api, sql):
    owner = make_user()
    channel = await create_channel(owner, provider="cloudflare")
    cid = channel["id"]
    [live_input] = provider_api.inputs_of(cid)
    path = rf"/stream/live_inputs/{live_input['uid']}$"

    await send_event("stream.end_requested", StreamEndRequested(stream_id=str(uuid.uuid4()), channel_id=cid),
                     source="streams")
    await eventually(lambda: provider_api.cloudflare[live_input["uid"]]["enabled"] is False, message="disabled")
    assert provider_api.calls_to("PUT", path)[-1]["enabled"] is False
    await eventually(lambda: sql("SELECT enabled FROM channel_provider_streams WHERE channel_id = :c", c=cid),
                     message="row")
    assert await sql("SELECT enabled FROM channel_provider_streams WHERE channel_id = :c", c=cid) == [(False,)]

    await send_event("stream.created", _created(cid), source="streams")
    await eventually(lambda: provider_api.cloudflare[live_input["uid"]]["enabled"] is True, message="enabled")
    assert provider_api.calls_to("PUT", path)[-1]["meta"]["channelId"] == cid
    assert provider_api.violations == []


async def test_a_local_channel_authorizes_no_longer_once_on_a_provider(client, make_user, create_channel, nc):
    import orjson

    owner = make_user()
    channel = await create_channel(owner)
    key = (await client.get(f"/api/channels/{channel['id']}/stream-key", headers=owner.headers)).json()["streamKey"]
    ask = lambda: nc.request("channels.ingest.authorize", orjson.dumps({"streamKey": key}), timeout=5)  # noqa: E731
    assert orjson.loads((await ask()).data)["allowed"] is True
    r = await client.put(f"/api/channels/{channel['id']}", json={"provider": "mux"}, headers=owner.headers)
    assert r.status_code == 200, r.text
    reply = orjson.loads((await ask()).data)
    assert reply["allowed"] is False and key not in str(reply)


async def test_provider_lookup_names_the_channel_of_a_provider_stream(channels_app, make_user, create_channel,
                                                                     provider_api, nc):
    import asyncio

    import orjson

    await asyncio.wait_for(channels_app.state.provider_lookup.ready.wait(), 5)

    owner = make_user()
    channel = await create_channel(owner, provider="cloudflare")
    [live_input] = provider_api.inputs_of(channel["id"])

    async def ask(body) -> dict:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        return orjson.loads((await nc.request("channels.provider.lookup", data, timeout=5)).data)

    assert await ask({"provider": "cloudflare", "streamId": live_input["uid"]}) == {
        "found": True, "channelId": channel["id"]}
    assert (await ask({"provider": "mux", "streamId": live_input["uid"]}))["found"] is False
    assert (await ask({"provider": "cloudflare", "streamId": "0" * 32}))["found"] is False
    assert (await ask(b"not json"))["found"] is False
