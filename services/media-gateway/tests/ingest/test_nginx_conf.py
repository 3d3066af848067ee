"""The ingest nginx config renders for any ladder and nginx itself accepts it (`nginx -t`); it no
longer writes HLS or transcodes (the media gateway does: media_gateway.llhls)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from media_gateway.ingest.nginx_conf import (
    LadderError,
    local_rtmp_address,
    parse_ladder,
    render_ingest_config,
    render_template,
    rtmp_socket_path,
    source_play_allow,
)

RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


def values(root: Path) -> dict[str, str]:
    for sub in ("logs", "tmp", "recordings"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return {
        "USER_DIRECTIVE": "user nobody nogroup;" if os.geteuid() == 0 else "",
        "PREFIX": str(root), "RTMP_LISTEN": "127.0.0.1:19935", "MEDIA_GATEWAY_UPSTREAM": "127.0.0.1:18105",
        "RECORD_ROOT": str(root / "recordings"), "CONTROL_LISTEN": "127.0.0.1:18186",
    }


@pytest.mark.parametrize("ladder", [None, "source", "source:8000k,1080p,720p:2500k,480p,360p,240p"])
def test_rendered_config_passes_nginx_t(tmp_path, ladder):
    if shutil.which("nginx") is None or not RTMP_MODULE.exists():
        pytest.skip("nginx with the RTMP module is not installed")
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_ingest_config(values(tmp_path), ladder=ladder))
    result = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf), "-e",
                             str(tmp_path / "logs" / "error.log")], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_default_config_shape(tmp_path):
    text = render_ingest_config(values(tmp_path))
    assert text.startswith("# Local ingest") and "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;" in text
    assert "{{" not in text
    # nginx-rtmp records src; it neither transcodes (exec_push) nor writes HLS any more
    assert "record_path " + str(tmp_path / "recordings") + ";" in text and "record_suffix .flv;" in text
    assert not re.search(r"^\s*(exec_push|hls|hls_variant|hls_path)\b", text, re.MULTILINE)
    assert "application abr" not in text
    # the key must not reach a log: no $name/$args in the RTMP access log, error log at warn
    log_format = re.search(r"log_format ingest (.*?);", text, re.DOTALL).group(1)
    assert "$name" not in log_format and "$args" not in log_format
    assert re.search(r"error_log \S+ warn;", text)
    assert "notify_relay_redirect on;" in text and "notify_method post;" in text


def test_a_bad_ladder_stops_the_ingest_too(tmp_path):
    with pytest.raises(LadderError):
        render_ingest_config(values(tmp_path), ladder="480")


def test_ladder_parsing():
    ladder = parse_ladder("360p, source:4000k ,720p:3000k")
    assert [(r.name, r.suffix, r.video_kbps) for r in ladder] == [
        ("source", "_src", 4000), ("720p", "_src_720p", 3000), ("360p", "_src_360p", 800)]
    for bad in ("480", "480p,480p", "99999p", "4k", "480p:fast"):
        with pytest.raises(LadderError):
            parse_ladder(bad)


def test_local_address_and_unknown_placeholders():
    assert local_rtmp_address("0.0.0.0:1935") == "127.0.0.1:1935"
    assert local_rtmp_address("1935") == "127.0.0.1:1935"
    assert local_rtmp_address("10.0.0.5:1935") == "10.0.0.5:1935"
    with pytest.raises(KeyError, match="NOPE"):
        render_template("x {{NOPE}}", {})


async def test_update_relay_fails_open_but_passes_refusals(tmp_path):
    """on_update goes through the ingest's internal server: a dead gateway means 204 (the stream
    goes on), the gateway's own 403 still drops the publish."""
    import asyncio

    import httpx

    from devstack.ports import free_port
    from devstack.processes import Supervisor
    from devstack.servers import Nginx

    if shutil.which("nginx") is None or not RTMP_MODULE.exists():
        pytest.skip("nginx with the RTMP module is not installed")

    async def refuse(reader, writer):
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    gateway = await asyncio.start_server(refuse, "127.0.0.1", 0)
    gateway_port = gateway.sockets[0].getsockname()[1]
    dead_port = free_port()
    sup = Supervisor(tmp_path / "sup")
    try:
        for upstream, expected in ((f"127.0.0.1:{dead_port}", 204), (f"127.0.0.1:{gateway_port}", 403)):
            root = tmp_path / str(expected)
            v = values(root)
            rtmp_port, control_port = free_port(), free_port()
            v.update(RTMP_LISTEN=f"127.0.0.1:{rtmp_port}", MEDIA_GATEWAY_UPSTREAM=upstream,
                     CONTROL_LISTEN=f"127.0.0.1:{control_port}")
            if os.geteuid() == 0:
                for sub in ("logs", "tmp"):
                    os.chmod(root / sub, 0o777)
            conf = root / "nginx.conf"
            conf.write_text(render_ingest_config(v, ladder="source"))
            nginx = Nginx(conf, root, control_port).start(sup, f"nginx-{expected}")
            try:
                async with httpx.AsyncClient() as http:
                    r = await http.post(f"http://127.0.0.1:{control_port}/hooks/rtmp/update",
                                        content=b"app=live&call=update_publish&name=x&clientid=1")
                assert r.status_code == expected
            finally:
                sup.stop(nginx.child)
    finally:
        sup.stop_all()
        gateway.close()


def test_src_pulls_from_live_through_a_unix_socket_under_the_prefix(tmp_path):
    text = render_ingest_config(values(tmp_path))
    assert f"listen unix:{tmp_path}/rtmp.sock;" in text
    assert f"pull unix:{tmp_path}/rtmp.sock app=live;" in text
    assert "idle_streams on;" in text  # the pull waits in live for the publisher
    assert "allow play 127.0.0.1;" in text


def test_src_admits_the_media_gateways_addresses_and_nothing_else(tmp_path):
    text = render_ingest_config({**values(tmp_path), "SOURCE_PLAY_ALLOW": "10.0.0.0/8, fd00::/8"})
    assert "allow play 127.0.0.1;\n            allow play 10.0.0.0/8;\n            allow play fd00::/8;" in text
    for bad in ("all", "10.0.0.1; allow publish all", "example.org"):
        with pytest.raises(ValueError):
            source_play_allow(bad)


def test_a_socket_path_longer_than_unix_allows_is_refused():
    with pytest.raises(ValueError, match="shorter prefix"):
        rtmp_socket_path("/tmp/" + "x" * 120)
    assert rtmp_socket_path("/tmp/p/") == "/tmp/p/rtmp.sock"
