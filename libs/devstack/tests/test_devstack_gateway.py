"""The gateway template: placeholders are filled, unknown ones are errors, nginx accepts the result."""

from __future__ import annotations

import re
import subprocess

import pytest
from devstack.servers import Nginx, nginx_binary
from devstack.stack import REPO_ROOT, SERVICES, Stack, StackConfig, parse_hls_origins, render_template

TEMPLATE = REPO_ROOT / "deploy" / "gateway" / "nginx.conf.template"


def test_render_template_fills_placeholders_and_leaves_nginx_variables():
    out = render_template("listen {{LISTEN}};\nroot {{ ROOT }};\nproxy_set_header Host $host;",
                          {"LISTEN": "127.0.0.1:8080", "ROOT": "/srv/web", "UNUSED": "x"})
    assert out == "listen 127.0.0.1:8080;\nroot /srv/web;\nproxy_set_header Host $host;"


def test_render_template_refuses_an_unknown_placeholder():
    with pytest.raises(RuntimeError, match="NEW_SERVICE_UPSTREAM"):
        render_template("server {{NEW_SERVICE_UPSTREAM}};", {"AUTH_UPSTREAM": "127.0.0.1:1"})


def test_render_template_values_are_not_rescanned():
    assert render_template("{{A}}", {"A": "{{B}}"}) == "{{B}}"


@pytest.fixture(params=[1, 2], ids=["one-ingest-node", "two-ingest-nodes"])
def rendered(tmp_path, request):
    config = StackConfig.ephemeral(tmp_path / "data")
    config.ingest_nodes = request.param
    stack = Stack(config, log=lambda *_: None)
    conf = stack.render_gateway()
    return config, conf


def test_every_template_placeholder_is_provided(rendered):
    config, conf = rendered
    text = conf.read_text()
    assert "{{" not in text and "}}" not in text
    assert f"listen 127.0.0.1:{config.gateway_port};" in text
    for svc in SERVICES:
        assert f"server 127.0.0.1:{config.service_ports[svc.name]};" in text
    placeholders = set(re.findall(r"\{\{\s*([A-Z0-9_]+)\s*\}\}", TEMPLATE.read_text()))
    assert {s.upstream_placeholder for s in SERVICES} <= placeholders


def test_hls_is_routed_to_the_node_in_its_url(rendered):
    """/hls/<node>/ goes to that node's media gateway, one upstream per ingest node."""
    config, conf = rendered
    text = conf.read_text()
    nodes = [f"ingest-{i}" for i in range(config.ingest_nodes)]
    for node in nodes:
        upstream = "hls_origin_" + node.replace("-", "_")
        assert f"~^/hls/{node}/ {upstream};" in text
        assert re.search(rf"upstream {upstream} {{ server 127\.0\.0\.1:\d+;", text)
    assert len(re.findall(r"^\s*upstream hls_origin_", text, re.MULTILINE)) == len(nodes)
    # the first node's media gateway is the one `make run` always had
    assert f"server 127.0.0.1:{config.service_ports['media-gateway']}; keepalive" in text


def test_hls_origins_are_parsed_strictly():
    assert parse_hls_origins("ingest-0=ingest-0:8105, ingest-1=10.0.0.2:8105") == {
        "ingest-0": "ingest-0:8105", "ingest-1": "10.0.0.2:8105"}
    for bad in ("", "ingest-0", "Ingest-0=x:1", "ingest-0=", "-x=h:1", "a=h:1;evil", "a=h:1 }"):
        with pytest.raises(ValueError):
            parse_hls_origins(bad)


def test_nginx_accepts_the_rendered_gateway(rendered):
    config, conf = rendered
    prefix = conf.parent
    result = subprocess.run([nginx_binary(), "-t", "-p", str(prefix), "-c", str(conf),
                             "-e", str(prefix / "logs" / "error.log")], check=False, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    Nginx(conf, prefix, config.gateway_port).test_config()  # the check `make run` does


def test_nginx_test_config_reports_a_broken_config(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp { server { listen nonsense-port; } \n")
    (tmp_path / "logs").mkdir()
    with pytest.raises(RuntimeError, match="nginx rejected"):
        Nginx(conf, tmp_path, 1).test_config()


def test_the_chat_address_is_a_plain_ws_url_or_refused():
    from devstack.stack import checked_chat_ws_url

    for good in ("", "wss://chat.example.com/ws", "ws://127.0.0.1:8111/ws", "wss://chat.example.com"):
        assert checked_chat_ws_url(good) == good
    # it lands in an HTML attribute and a CSP source list
    for bad in ('wss://x/ws" onload="x', "wss://x/ws; script-src *", "https://x/ws", "wss://x/ws?token=1",
                "wss://x/ws 'unsafe-inline'", "javascript:alert(1)"):
        with pytest.raises(ValueError):
            checked_chat_ws_url(bad)


def test_a_chat_address_is_written_into_the_page_and_its_csp(tmp_path):
    config = StackConfig.ephemeral(tmp_path / "data")
    config.chat_ws_url = "wss://chat.example.com/ws"
    text = Stack(config, log=lambda *_: None).render_gateway().read_text()
    assert """sub_filter '<meta name="chat-url" content="">' '<meta name="chat-url" content="wss://chat.example.com/ws">';""" in text
    assert """sub_filter "connect-src 'self'" "connect-src 'self' wss://chat.example.com/ws";""" in text
    # what the filters look for is in the page as written (else they would silently do nothing)
    page = (REPO_ROOT / "web" / "index.html").read_text()
    assert '<meta name="chat-url" content="">' in page and "connect-src 'self';" in page
