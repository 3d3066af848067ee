"""The gateway template: placeholders are filled, unknown ones are errors, nginx accepts the result."""

from __future__ import annotations

import re
import subprocess

import pytest
from devstack.servers import Nginx, nginx_binary
from devstack.stack import REPO_ROOT, SERVICES, Stack, StackConfig, render_template

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


@pytest.fixture
def rendered(tmp_path):
    config = StackConfig.ephemeral(tmp_path / "data")
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
