"""NATS and Valkey ask for credentials in the rendered overlays (issue 14 item 13): nats-server has
one user per service with the permissions of contracts.access, every service process logs in as
its own user, and Valkey requires the password the services' REDIS_URL carries."""

from __future__ import annotations

import re

import pytest
from contracts.access import ADMIN_USER, USERS
from devstack.credentials import password_variable, render_authorization

OVERLAYS = ("dev", "prod")
SERVICE_IMAGE = re.compile(r"streamplatform[-/](?P<service>auth|channels|streams|chat|media-gateway)(?::|$)")
# services that never connect to Valkey (none now: streams keeps its clip rate limits there)
NO_VALKEY: set[str] = set()


def _workloads(docs):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def _secret(entry: dict) -> tuple[str, str] | None:
    ref = entry.get("valueFrom", {}).get("secretKeyRef")
    return (ref["name"], ref["key"]) if ref else None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_has_the_users_and_permissions_of_contracts_access(rendered, overlay):
    docs = rendered[overlay]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("nats-config"))
    assert "include ./authorization.conf" in config["data"]["nats.conf"]
    assert config["data"]["authorization.conf"] == render_authorization(None), (
        "deploy/k8s/base/nats.yaml's authorization.conf is not contracts.access: "
        "paste the output of `python -m devstack nats-authorization`")
    nats = _workloads(docs)["nats"]["spec"]["template"]["spec"]["containers"][0]
    env = _env(nats)
    for user in [ADMIN_USER, *USERS]:
        assert _secret(env[password_variable(user)]) == ("nats-users", user), user


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_process_logs_in_as_its_own_user(rendered, overlay):
    seen = set()
    for name, workload in _workloads(rendered[overlay]).items():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            match = SERVICE_IMAGE.search(container.get("image", ""))
            if not match:
                continue
            args = container.get("args") or []
            user = "chat-edge" if args[:1] == ["edge"] else match["service"]
            env = _env(container)
            assert _secret(env["NATS_PASSWORD"]) == ("nats-users", user), name
            assert env["NATS_URL"]["value"] == f"nats://{user}:$(NATS_PASSWORD)@nats:4222", name
            # the kubelet expands $(VAR) only from variables defined before it
            names = list(env)
            assert names.index("NATS_PASSWORD") < names.index("NATS_URL"), name
            if match["service"] in NO_VALKEY:
                assert "REDIS_URL" not in env and "REDIS_PASSWORD" not in env, name
            else:
                assert _secret(env["REDIS_PASSWORD"]) == ("valkey", "password"), name
                assert env["REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@valkey:6379/0", name
                assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL"), name
            seen.add(user)
    assert seen == set(USERS)
    # no shared, credential-less URL left for a container to fall back on
    for config in (d for d in rendered[overlay] if d["kind"] == "ConfigMap"):
        assert not {"NATS_URL", "REDIS_URL"} & set(config.get("data") or {}), config["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_valkey_requires_the_password(rendered, overlay):
    valkey = _workloads(rendered[overlay])["valkey"]["spec"]["template"]["spec"]["containers"][0]
    args = valkey["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert "--protected-mode" not in args
    env = _env(valkey)
    assert _secret(env["REDIS_PASSWORD"]) == ("valkey", "password")
    assert _secret(env["REDISCLI_AUTH"]) == ("valkey", "password")  # the exec probes' valkey-cli
