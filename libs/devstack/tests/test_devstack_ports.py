"""A taken port is a sentence naming the variable to change, not a traceback."""

from __future__ import annotations

import socket

import pytest
from devstack.ports import PortInUse, ensure_free, free_port, free_ports, is_free, wait_for_port
from devstack.stack import Stack, StackConfig


@pytest.fixture
def bound_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    yield s
    s.close()


def test_ensure_free_names_the_env_var_when_a_socket_is_bound(bound_socket):
    port = bound_socket.getsockname()[1]
    with pytest.raises(PortInUse) as info:
        ensure_free(port, "NATS", "NATS_PORT")
    message = str(info.value)
    assert str(port) in message
    assert "NATS" in message
    assert "Set NATS_PORT to another port." in message
    assert info.value.port == port


def test_ensure_free_also_refuses_a_listening_port(bound_socket):
    bound_socket.listen()
    port = bound_socket.getsockname()[1]
    assert not is_free(port)
    with pytest.raises(PortInUse, match="GATEWAY_PORT"):
        ensure_free(port, "the gateway (HTTP)", "GATEWAY_PORT")
    assert wait_for_port(port, 1.0)


def test_ensure_free_passes_a_free_port_through():
    port = free_port()
    assert ensure_free(port, "NATS", "NATS_PORT") == port


def test_port_in_use_without_env_var_has_no_hint(bound_socket):
    port = bound_socket.getsockname()[1]
    with pytest.raises(PortInUse) as info:
        ensure_free(port, "something")
    assert "Set " not in str(info.value)


def test_stack_check_ports_reports_the_taken_one(tmp_path, bound_socket):
    config = StackConfig.ephemeral(tmp_path)
    config.redis_port = bound_socket.getsockname()[1]
    with pytest.raises(PortInUse, match="REDIS_PORT"):
        Stack(config, log=lambda *_: None).check_ports()


def test_stack_check_ports_reports_a_port_configured_twice(tmp_path):
    config = StackConfig.ephemeral(tmp_path)
    config.nats_port = config.postgres_port
    with pytest.raises(PortInUse, match="also configured for"):
        Stack(config, log=lambda *_: None).check_ports()


def test_free_ports_are_distinct_and_free():
    ports = free_ports(40)
    assert len(set(ports)) == 40
    assert all(is_free(p) for p in ports)


def test_an_ephemeral_stack_claims_every_port_once(tmp_path):
    from devstack.stack import StackConfig

    claims = [port for port, _what, _env in StackConfig.ephemeral(tmp_path).port_claims()]
    assert len(claims) == len(set(claims))


def test_stack_check_ports_reports_a_taken_udp_srt_port(tmp_path):
    """SRT is UDP: a TCP check would pass a port another SRT listener (a second `make run`) holds."""
    config = StackConfig.ephemeral(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("0.0.0.0", config.srt_port))
        assert is_free(config.srt_port)  # nothing on TCP
        with pytest.raises(PortInUse, match="SRT_PORT"):
            Stack(config, log=lambda *_: None).check_ports()
    Stack(config, log=lambda *_: None).check_ports()
