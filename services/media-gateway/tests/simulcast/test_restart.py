"""A media gateway restart does not stop a live creator's simulcast: the restarted gateway forwards
its node's open sessions again, as on publish, while a session that ended during the restart gets
no forwarder.

The real thing: nginx-rtmp rendered from deploy/ingest calling the app back (uvicorn), ffmpeg as
the encoders, and a second nginx-rtmp standing in for Twitch/YouTube that records every publish it
receives (one file each), which ffprobe reads. The restart is the app's lifespan ending and a new
app starting on the same port and settings, as a pod's restart does; nginx-rtmp and the encoders
stay up.
"""

import asyncio
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import orjson
import pytest
import uvicorn

from contracts.requests import SimulcastDestinationsReply, SimulcastDestinationsRequest, SimulcastTarget
from contracts.subjects import CHANNELS_SIMULCAST_DESTINATIONS
from devstack.ports import free_port
from devstack.processes import Supervisor
from devstack.servers import Nginx
from servicekit.db import Database

from media_gateway.ingest import service
from media_gateway.ingest.models import IngestSession
from media_gateway.ingest.nginx_conf import render_ingest_config
from media_gateway.ingest.stats import read_live_publishers
from media_gateway.main import create_app

RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None or not RTMP_MODULE.exists() or shutil.which("ffmpeg") is None
    or shutil.which("ffprobe") is None, reason="needs nginx with the RTMP module, ffmpeg and ffprobe")

DESTINATION_CONF = """load_module {module};
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
            # one file per publish received (<key>-<unix time>.flv)
            record_unique on;
        }}
    }}
}}
"""


class Gateway:
    """The media gateway app served by uvicorn on a fixed port, stopped and started again."""

    def __init__(self, settings):
        self.settings = settings
        self.app = None
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task | None = None

    async def start(self) -> None:
        self.app = create_app(self.settings, configure_process=False)
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.settings.port,
                                                     log_config=None, access_log=False, lifespan="on"))
        self._serving = asyncio.create_task(self._server.serve())
        while not self._server.started:
            assert not self._serving.done(), "uvicorn did not start"
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._serving is not None:
            self._server.should_exit = True
            await self._serving
            self._serving = None


def writable_dir(path: Path) -> Path:
    # nginx workers run as nobody when we are root
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)
    return path


@pytest.fixture
async def stack(media_settings):
    """The ingest's nginx-rtmp, a destination nginx-rtmp and the gateway (not yet started)."""
    root = Path(tempfile.mkdtemp(prefix="mg-simulcast-"))
    for sub in ("", "logs", "tmp", "recordings", "vod", "dest", "dest/logs", "dest/received"):
        writable_dir(root / sub)
    ports = {name: free_port() for name in ("app", "rtmp", "control", "dest")}
    settings = media_settings.model_copy(update={
        "port": ports["app"], "rtmp_internal_url": f"rtmp://127.0.0.1:{ports['rtmp']}",
        "ingest_control_url": f"http://127.0.0.1:{ports['control']}/control",
        "record_root": root / "recordings", "vod_root": root / "vod", "ingest_source_pull": True,
        # the forwarders play src; the transcoders are not needed here (two cores)
        "live_transcode": False, "simulcast_enabled": True, "simulcast_retry_seconds": 0.5,
    })
    user = "user nobody nogroup;" if os.geteuid() == 0 else ""
    conf = root / "nginx.conf"
    conf.write_text(render_ingest_config({
        "USER_DIRECTIVE": user, "PREFIX": str(root), "RTMP_LISTEN": f"127.0.0.1:{ports['rtmp']}",
        "MEDIA_GATEWAY_UPSTREAM": f"127.0.0.1:{ports['app']}",
        "RECORD_ROOT": str(root / "recordings"), "CONTROL_LISTEN": f"127.0.0.1:{ports['control']}",
    }))
    dest_conf = root / "dest" / "nginx.conf"
    dest_conf.write_text(DESTINATION_CONF.format(module=RTMP_MODULE, user=user, prefix=root / "dest",
                                                 port=ports["dest"]))
    sup = Supervisor(root / "logs")
    gateway = Gateway(settings)
    try:
        Nginx(conf, root, ports["rtmp"]).start(sup, "ingest-nginx")
        Nginx(dest_conf, root / "dest", ports["dest"]).start(sup, "destination-nginx")
        yield {"ports": ports, "settings": settings, "gateway": gateway, "received": root / "dest" / "received"}
    finally:
        await gateway.stop()
        sup.stop_all()
        shutil.rmtree(root, ignore_errors=True)


class Destinations:
    """channels' side of `channels.simulcast.destinations`: one destination per channel."""

    def __init__(self):
        self.targets: dict[str, SimulcastTarget] = {}
        self.asked: list[str] = []

    async def on_request(self, msg) -> None:
        channel_id = SimulcastDestinationsRequest.model_validate_json(msg.data).channel_id
        self.asked.append(channel_id)
        target = self.targets.get(channel_id)
        await msg.respond(SimulcastDestinationsReply(destinations=[target] if target else []).to_json_bytes())


@pytest.fixture
async def destinations(nc):
    fake = Destinations()
    sub = await nc.subscribe(CHANNELS_SIMULCAST_DESTINATIONS, cb=fake.on_request)
    await nc.flush()
    yield fake
    await sub.unsubscribe()


async def encoder(rtmp_port: int, key: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-f", "lavfi", "-i", "sine=frequency=440",
        "-t", "120", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/{key}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def stop_encoder(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
    await process.wait()


async def until(what: str, check, timeout: float = 20.0, every: float = 0.1):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(every)


def states(events, session_id: str, since: int = 0) -> list[str]:
    """The simulcast states reported for a session, from the `since`-th event on."""
    return [e["data"]["state"] for e in events.items[since:]
            if e["type"] == "media.simulcast.state_changed" and e["data"]["ingestSessionId"] == session_id]


def recordings(received: Path, key: str) -> list[Path]:
    return sorted(received.glob(f"{key}-*.flv"))


async def _not_publishing(settings, session_id: str) -> bool:
    live = await read_live_publishers(settings)  # None: /stat unreadable, so not known to be gone
    return live is not None and service.source_stream_name(session_id) not in live


async def test_a_restart_resumes_the_forwarders_of_the_sessions_still_live(stack, channels, destinations,
                                                                             events):
    ports, settings, gateway, received = stack["ports"], stack["settings"], stack["gateway"], stack["received"]
    # stays live through the restart / its encoder leaves while the gateway is down / its session
    # is ended (by another replica) while the gateway is down
    names = ("stays", "leaves", "ended")
    keys = {name: "sk_" + secrets.token_urlsafe(24) for name in names}
    dest_keys = {name: f"{name}_{secrets.token_hex(8)}" for name in names}
    for name in names:
        channels.keys[keys[name]] = f"chan-{name}"
        destinations.targets[f"chan-{name}"] = SimulcastTarget(
            id=f"dest-{name}", url=f"rtmp://127.0.0.1:{ports['dest']}/dest/{dest_keys[name]}",
            key_suffix=dest_keys[name][-4:])
    await gateway.start()
    encoders = {name: await encoder(ports["rtmp"], keys[name]) for name in names}
    try:
        sessions = {}
        for name in names:
            connected = await events.wait_for("media.ingest.connected", lambda d, n=name: d["channelId"] == f"chan-{n}")
            sessions[name] = connected["data"]["ingestSessionId"]
        for name in names:
            await until(f"{name} forwarded", lambda n=name: "live" in states(events, sessions[n]))
        assert all(len(recordings(received, dest_keys[n])) == 1 for n in names)

        # ---- the restart -------------------------------------------------------------------------
        await gateway.stop()
        await stop_encoder(encoders["leaves"])  # on_publish_done finds nobody: its session stays open
        await until("the leaving encoder gone from the ingest",
                    lambda: _not_publishing(settings, sessions["leaves"]))
        db = Database(settings.database_url, pool_size=1)
        try:
            async with db.session() as session:
                row = await session.get(IngestSession, sessions["ended"])
                assert await service.end_session(session, row, "revoked elsewhere")
                await session.commit()
        finally:
            await db.dispose()
        since, asked = len(events.items), len(destinations.asked)
        await gateway.start()

        # the live one is forwarded again, once, and reported live again
        await until("the live session forwarded again", lambda: "live" in states(events, sessions["stays"], since))
        assert "failed" not in states(events, sessions["stays"], since)
        simulcasts = gateway.app.state.simulcasts
        assert list(simulcasts.forwarders(sessions["stays"])) == ["dest-stays"]
        # the publish path's start for the same session starts nothing more
        resumed_asked = len(destinations.asked)
        simulcasts.start(sessions["stays"], "chan-stays")
        await asyncio.sleep(0.5)
        assert list(simulcasts.forwarders(sessions["stays"])) == ["dest-stays"]
        assert len(destinations.asked) == resumed_asked
        assert set(destinations.asked[asked:]) == {"chan-stays"}  # nobody asked for the ended ones

        # the destination received a second publish: the source itself (H.264 320x240 + AAC)
        def second_recording():
            files = recordings(received, dest_keys["stays"])
            return len(files) == 2 and files[-1].stat().st_size > 50_000 and files[-1]

        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height",
                                "-of", "json", str(await until("the second recording", second_recording))],
                               capture_output=True, text=True, timeout=30)
        streams = {s["codec_type"]: s for s in orjson.loads(probe.stdout)["streams"]}
        assert (streams["video"]["codec_name"], streams["video"]["width"], streams["video"]["height"]) \
            == ("h264", 320, 240)
        assert streams["audio"]["codec_name"] == "aac"

        # the sessions that ended during the restart get no forwarder
        for name in ("leaves", "ended"):
            assert simulcasts.forwarders(sessions[name]) == {}
            assert states(events, sessions[name], since) in ([], ["idle"])  # idle: the old forwarder's stop
            assert len(recordings(received, dest_keys[name])) == 1
    finally:
        for process in encoders.values():
            await stop_encoder(process)
