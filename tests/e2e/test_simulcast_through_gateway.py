"""Simulcast through the gateway: a creator adds destinations (owner only, key never answered
again, bad URLs 422), goes live with real ffmpeg, and the ingest node copies the source (-c copy)
to a second local nginx-rtmp acting as the destination, where ffprobe reads what arrived. A
destination nobody listens on shows `failed` with its error (the key masked) while the stream
stays LIVE and the good destination stays `live`."""

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from devstack.ports import free_port
from devstack.servers import Nginx

from .helpers import create_channel, encoder, register, rtmp_url, stop, stream_key, until

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")]

DESTINATION_CONF = """load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application dest {{
            live on;
            record all;
            record_path {prefix}/received;
            record_unique off;
        }}
    }}
}}
"""


@pytest.fixture
def destination_server(stack):
    """A second nginx-rtmp standing in for YouTube/Twitch ingest: it records what it receives.
    Started under the stack's supervisor, so it cannot outlive the test session."""
    prefix = Path(stack.config.data_dir) / f"simulcast-dest-{uuid.uuid4().hex[:6]}"
    for d in (prefix / "logs", prefix / "received"):
        d.mkdir(parents=True)
        if os.geteuid() == 0:
            os.chmod(d, 0o777)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(DESTINATION_CONF.format(user="user nobody nogroup;" if os.geteuid() == 0 else "",
                                            prefix=prefix, port=port))
    server = Nginx(conf, prefix, port).start(stack.sup, f"simulcast-destination-{port}")
    try:
        yield port, prefix / "received"
    finally:
        stack.sup.stop(server.child, grace=3)


def test_destination_routes_are_owner_only_and_validate(gateway):
    owner, other = register(gateway, "sim")["auth"], register(gateway, "sim")["auth"]
    channel = create_channel(gateway, owner, f"Sim {uuid.uuid4().hex[:6]}")
    url = f"/api/channels/{channel['id']}/destinations"
    body = {"name": "Twitch", "url": "rtmp://127.0.0.1:1935/app", "streamKey": "live_secret_9876", "enabled": True}

    for bad in ({**body, "url": "http://127.0.0.1/app"}, {**body, "url": "rtmp:///app"}, {**body, "streamKey": ""}):
        r = gateway.post(url, json=bad, headers=owner)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert gateway.get(url, headers=owner).json()["items"] == []
    assert gateway.post(url, json=body, headers=other).status_code == 403
    assert gateway.get(url).status_code == 401

    r = gateway.post(url, json=body, headers=owner)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["streamKeyLast4"] == "9876" and "live_secret_9876" not in r.text
    assert created["state"] == "idle" and created["enabled"] is True

    r = gateway.put(f"{url}/{created['id']}", json={"name": "Twitch EU", "enabled": False}, headers=owner)
    assert r.status_code == 200 and r.json()["name"] == "Twitch EU" and r.json()["enabled"] is False
    assert gateway.put(f"{url}/{created['id']}", json={"url": "ftp://x"}, headers=owner).status_code == 422
    assert gateway.put(f"{url}/{created['id']}", json={"enabled": True}, headers=other).status_code == 403
    listed = gateway.get(url, headers=owner)
    assert [d["name"] for d in listed.json()["items"]] == ["Twitch EU"] and "live_secret_9876" not in listed.text

    assert gateway.delete(f"{url}/{created['id']}", headers=other).status_code == 403
    assert gateway.delete(f"{url}/{created['id']}", headers=owner).status_code == 204
    assert gateway.delete(f"{url}/{created['id']}", headers=owner).status_code == 404


def test_live_source_is_copied_to_destinations_and_a_refused_one_fails_alone(gateway, stack, destination_server):
    port, received = destination_server
    owner = register(gateway, "sim")["auth"]
    channel = create_channel(gateway, owner, f"Simulcast {uuid.uuid4().hex[:6]}")
    url = f"/api/channels/{channel['id']}/destinations"
    good_key = f"dest_{uuid.uuid4().hex}"
    refused_key = f"refused_{uuid.uuid4().hex}"
    refused_port = free_port()  # nobody listens there
    good = gateway.post(url, json={"name": "local", "url": f"rtmp://127.0.0.1:{port}/dest", "streamKey": good_key,
                                   "enabled": True}, headers=owner).json()
    refused = gateway.post(url, json={"name": "nobody", "url": f"rtmp://127.0.0.1:{refused_port}/live",
                                      "streamKey": refused_key, "enabled": True}, headers=owner).json()
    key = stream_key(gateway, channel["id"], owner)

    publisher = encoder(rtmp_url(stack, key), seconds=40, size="320x240", rate=30)
    try:
        def states():
            items = {d["id"]: d for d in gateway.get(url, headers=owner).json()["items"]}
            if items[good["id"]]["state"] == "live" and items[refused["id"]]["state"] == "failed":
                return items
            return None

        items = until("the good destination live and the refused one failed", states, timeout=60, every=0.5)
        error = items[refused["id"]]["lastError"]
        assert error and "refused" in error.lower(), error
        assert refused_key not in json.dumps(items) and good_key not in json.dumps(items)

        # the main stream is unaffected: LIVE, and still playing through the gateway
        live = gateway.get(f"/api/channels/{channel['slug']}").json()
        assert live["isLive"] is True
        stream = gateway.get(f"/api/streams/{live['liveStreamId']}").json()
        assert stream["status"] == "LIVE"

        # what the destination received: the source itself (not re-encoded: 320x240 H.264 + AAC)
        recorded = received / f"{good_key}.flv"
        until("the destination's recording", lambda: recorded.exists() and recorded.stat().st_size > 100_000,
              timeout=30, every=0.5)
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                                "stream=codec_type,codec_name,width,height", "-of", "json", str(recorded)],
                               capture_output=True, text=True, timeout=30)
        codecs = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
        assert codecs["video"]["codec_name"] == "h264"
        assert (codecs["video"]["width"], codecs["video"]["height"]) == (320, 240)
        assert codecs["audio"]["codec_name"] == "aac"

        # the stream still plays after all that
        hls = gateway.get(stream["hlsUrl"]) if stream.get("hlsUrl") else None
        assert hls is None or hls.status_code == 200
    finally:
        stop(publisher)

    # the session ended: the forwarders stop and report idle
    until("every destination idle after the stream ended",
          lambda: all(d["state"] == "idle" for d in gateway.get(url, headers=owner).json()["items"]), timeout=60,
          every=0.5)
