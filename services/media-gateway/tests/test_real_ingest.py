"""The real thing: nginx-rtmp rendered from deploy/ingest, the app served by uvicorn, ffmpeg as the
encoder. A valid key plays as adaptive LL-HLS from the app's origin within seconds (the transcoder
plays the live source) and ends as a VOD with ENDLIST on every playlist; a wrong key is refused; a
key rotation drops the live publish; the key is in no file name and no log line."""

import asyncio
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from contracts.envelope import make_event
from contracts.events.channels import StreamKeyRotated
from devstack.ports import free_port
from devstack.processes import Supervisor
from devstack.servers import Nginx
from servicekit.logging import JsonFormatter

from media_gateway.ingest.nginx_conf import render_ingest_config
from media_gateway.main import create_app

KEY = "sk_" + secrets.token_urlsafe(24)
WRONG_KEY = "sk_" + secrets.token_urlsafe(24)
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None or not RTMP_MODULE.exists() or shutil.which("ffmpeg") is None,
    reason="needs nginx with the RTMP module and ffmpeg")


@pytest.fixture
def ingest_root():
    # nginx workers run as nobody when we are root: the folders must be reachable and writable
    root = Path(tempfile.mkdtemp(prefix="mg-ingest-"))
    for sub in ("logs", "tmp", "recordings", "vod", "objects"):
        (root / sub).mkdir()
    for path in [root, *root.iterdir()]:
        os.chmod(path, 0o777)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def stack(media_settings, ingest_root):
    """uvicorn serving the app + nginx-rtmp calling it back."""
    ports = {name: free_port() for name in ("app", "rtmp", "control")}
    settings = media_settings.model_copy(update={
        "port": ports["app"], "rtmp_internal_url": f"rtmp://127.0.0.1:{ports['rtmp']}",
        "ingest_control_url": f"http://127.0.0.1:{ports['control']}/control",
        "record_root": ingest_root / "recordings", "vod_root": ingest_root / "vod",
        "thumbnail_retry_seconds": 0.5, "ingest_source_pull": True, "live_transcode": True,
    })
    app = create_app(settings, configure_process=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=ports["app"], log_config=None,
                                           access_log=False, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)

    conf = ingest_root / "nginx.conf"
    conf.write_text(render_ingest_config({
        "USER_DIRECTIVE": "user nobody nogroup;" if os.geteuid() == 0 else "",
        "PREFIX": str(ingest_root), "RTMP_LISTEN": f"127.0.0.1:{ports['rtmp']}",
        "MEDIA_GATEWAY_UPSTREAM": f"127.0.0.1:{ports['app']}",
        "RECORD_ROOT": str(ingest_root / "recordings"), "CONTROL_LISTEN": f"127.0.0.1:{ports['control']}",
    }))
    sup = Supervisor(ingest_root / "logs")
    try:
        Nginx(conf, ingest_root, ports["rtmp"]).start(sup, "ingest-nginx")
        yield {"ports": ports, "root": ingest_root, "settings": settings}
    finally:
        sup.stop_all()
        server.should_exit = True
        await serving


async def encoder(rtmp_port: int, key: str, seconds: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/{key}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def fetch_until(http: httpx.AsyncClient, url: str, ready=lambda r: True, timeout: float = 15) -> httpx.Response:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await http.get(url)
        if r.status_code == 200 and ready(r):
            return r
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{url} not ready: {r.status_code} {r.text[:200]}")
        await asyncio.sleep(0.1)


def probe(path: Path) -> str:
    return subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
                           str(path)], check=False, capture_output=True, text=True).stdout


async def test_publish_play_record_refuse_and_drop(stack, channels, events, nc, caplog, tmp_path, stored):
    caplog.set_level(logging.DEBUG)
    ports, root = stack["ports"], stack["root"]
    channels.keys[KEY] = "chan-real"
    hls = f"http://127.0.0.1:{ports['app']}"

    # ---- a valid key: live, adaptive HLS, thumbnail ----------------------------------------
    loop = asyncio.get_running_loop()
    started = loop.time()
    publisher = await encoder(ports["rtmp"], KEY, seconds=6)
    connected = await events.wait_for("media.ingest.connected", lambda d: d["channelId"] == "chan-real")
    session_id = connected["data"]["ingestSessionId"]
    assert connected["data"]["hlsUrl"] == f"/hls/ingest-0/{session_id}/index.m3u8"

    async with httpx.AsyncClient(base_url=hls, timeout=5) as http:
        master = await fetch_until(http, connected["data"]["hlsUrl"])
        assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert master.headers["access-control-allow-origin"] == "*"
        variants = re.findall(r"^(/hls/\S+/index\.m3u8)$", master.text, re.MULTILINE)
        assert variants == [f"/hls/ingest-0/{session_id}_src/index.m3u8",
                            f"/hls/ingest-0/{session_id}_src_480p/index.m3u8"]
        assert "BANDWIDTH=" in master.text and "RESOLUTION=854x480" in master.text
        first_segment_after = None
        for variant in variants:
            playlist = await fetch_until(http, variant, lambda r: "#EXTINF" in r.text)
            first_segment_after = first_segment_after or loop.time() - started
            assert "#EXT-X-PART:" in playlist.text and "#EXT-X-PRELOAD-HINT:TYPE=PART" in playlist.text
            base = variant.rsplit("/", 1)[0]
            init_uri = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist.text)[1]
            segment_uri = re.findall(r"^(seg-\d+\.m4s)$", playlist.text, re.MULTILINE)[-1]
            init = await http.get(f"{base}/{init_uri}")
            segment = await http.get(f"{base}/{segment_uri}")
            assert init.status_code == segment.status_code == 200
            assert segment.headers["content-type"] == "video/mp4"
            assert "immutable" in segment.headers["cache-control"]
            local = tmp_path / f"{variant.count('_')}.mp4"
            local.write_bytes(init.content + segment.content)
            assert "video" in probe(local) and "audio" in probe(local), variant
        preflight = await http.options(connected["data"]["hlsUrl"])
        assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"
        assert (await http.get("/hls/../nginx.conf")).status_code in (400, 404)
    logging.getLogger("test").info("first source segment after %.2fs", first_segment_after)

    # the ingest's load as the media gateway exports it (ingest_* gauges, from nginx-rtmp's /stat)
    from media_gateway.ingest.stats import IngestStatsWorker

    async with httpx.AsyncClient() as http:
        load = await IngestStatsWorker(stack["settings"]).read_once(http)
    assert load is not None and load.publishers == 1, load

    thumb = await events.wait_for("media.thumbnail.updated", lambda d: d["channelId"] == "chan-real", timeout=15)
    assert session_id in thumb["data"]["url"]

    # ---- the end of the broadcast: disconnected, then the VOD ---------------------------------
    assert await asyncio.wait_for(publisher.wait(), 20) == 0
    await events.wait_for("media.ingest.disconnected", lambda d: d["ingestSessionId"] == session_id)
    async with httpx.AsyncClient(base_url=hls, timeout=5) as http:
        for variant in variants:  # the stream's end reaches every playlist
            await fetch_until(http, variant, lambda r: r.text.rstrip().endswith("#EXT-X-ENDLIST"))
    ready = await events.wait_for("media.recording.ready", lambda d: d["ingestSessionId"] == session_id, timeout=30)
    # the whole broadcast from its first key frame: src's pull waited in `live` before the encoder
    # was let in (a push joining late started a key frame, one second, later)
    assert ready["data"]["durationSeconds"] > 5.5, ready["data"]
    vod = tmp_path / "vod.mp4"
    vod.write_bytes(await stored(f"vod/{session_id}.mp4"))  # from the object store (S3)
    assert "video" in probe(vod) and "audio" in probe(vod)

    # nginx-rtmp's on_update (every 5 s, through the ingest's internal relay) reached the gateway
    from servicekit.db import Database

    from media_gateway.ingest.models import IngestSession

    db = Database(stack["settings"].database_url, pool_size=1)
    try:
        async with db.session() as session:
            row = await session.get(IngestSession, session_id)
        assert (row.last_seen_at - row.started_at).total_seconds() >= 4
        assert row.relay_name == f"{session_id}_src"  # renamed in place: the pull, not the push fallback
    finally:
        await db.dispose()

    # ---- a wrong key is refused within seconds ------------------------------------------------
    refused = await encoder(ports["rtmp"], WRONG_KEY, seconds=5)
    assert await asyncio.wait_for(refused.wait(), 5) != 0
    assert not [e for e in events.of_type("media.ingest.connected") if e["data"]["ingestSessionId"] != session_id]

    # ---- rotating the key drops the live publish ------------------------------------------------
    live = await encoder(ports["rtmp"], KEY, seconds=30)
    second = await events.wait_for("media.ingest.connected", lambda d: d["ingestSessionId"] != session_id)
    rotated = make_event("channel.stream_key_rotated",
                         StreamKeyRotated(channel_id="chan-real", rotated_at=datetime.now(UTC)), source="channels")
    await nc.jetstream().publish("channel.stream_key_rotated", rotated.to_json_bytes(),
                                 headers={"Nats-Msg-Id": rotated.id})
    dropped_at = loop.time()
    await asyncio.wait_for(live.wait(), 10)
    logging.getLogger("test").info("publish dropped %.2fs after the rotation", loop.time() - dropped_at)
    assert loop.time() - dropped_at < 3  # the control module, not the next on_update
    await events.wait_for("media.ingest.disconnected",
                          lambda d: d["ingestSessionId"] == second["data"]["ingestSessionId"])

    # ---- the key is in no path, no nginx log and no service log ---------------------------------
    await asyncio.sleep(0.5)
    names = [str(p.relative_to(root)) for p in root.rglob("*")]
    assert not [n for n in names if KEY in n or WRONG_KEY in n]
    for log_file in (root / "logs").iterdir():
        content = log_file.read_text(errors="replace")
        assert KEY not in content and WRONG_KEY not in content, log_file.name
    assert (root / "logs" / "rtmp-access.log").read_text().count("PUBLISH") >= 2
    formatter = JsonFormatter("media-gateway")
    for record in caplog.records:
        line = formatter.format(record)
        assert KEY not in line and WRONG_KEY not in line
    for raw in events.raw:
        assert KEY.encode() not in raw
