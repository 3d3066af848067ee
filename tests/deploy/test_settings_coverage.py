"""Every container of every rendered overlay gets each setting its process requires.

Rendering and schema validation only check the YAML's shape: a Deployment that forgets
DATABASE_URL renders fine and then dials 127.0.0.1 in the cluster. Here the requirement comes from
the code: a process's pydantic Settings class (fields without a default, plus the
`required_in_prod` it declares: settings whose defaults only suit one machine), and the provision
from the rendered manifest (env values, downward-API fields, ConfigMap keys rendered in the overlay,
and Secret keys of Secrets docs/operations.md tells the operator to create).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")

IMAGE = re.compile(r"streamplatform[-/](?P<service>[a-z-]+)(?::|$)")
# nginx containers (gateway, ingest) take no Settings: their templates are checked against their
# env by test_gateway_environment_fills_every_template_placeholder / test_ingest_renders_...
TEMPLATED = {"gateway", "ingest"}
MODULES = {"auth": "auth_service", "channels": "channels_service", "chat": "chat_service",
           "streams": "streams_service", "media-gateway": "media_gateway"}
# `python -m <module> migrate` reads only the database URL
MIGRATE_NEEDS = frozenset({"database_url"})


def settings_class(service: str, args: list[str]):
    if service == "chat" and args[:1] == ["edge"]:
        return importlib.import_module("chat_service.edge.config").EdgeSettings
    return importlib.import_module(f"{MODULES[service]}.config").Settings


def required_env(cls, args: list[str]) -> set[str]:
    names = set(MIGRATE_NEEDS) if args[:1] == ["migrate"] else \
        {n for n, f in cls.model_fields.items() if f.is_required()} | set(cls.required_in_prod)
    unknown = names - set(cls.model_fields)
    assert not unknown, f"{cls.__qualname__}.required_in_prod names no field: {sorted(unknown)}"
    return {n.upper() for n in names}


def provided_env(container: dict, configmaps: dict[str, dict], documented_secrets: set[str]) -> set[str]:
    names = set()
    for e in container.get("env", []):
        ref = e.get("valueFrom", {})
        if "configMapKeyRef" in ref:
            cm = ref["configMapKeyRef"]
            if cm["key"] not in configmaps.get(cm["name"], {}):
                continue
        if "secretKeyRef" in ref and ref["secretKeyRef"]["name"] not in documented_secrets:
            continue
        names.add(e["name"])
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            names |= {prefix + k for k in configmaps.get(source["configMapRef"]["name"], {})}
        # a whole Secret as env: its keys are not in the repository; none is used today
        assert "secretRef" not in source, "envFrom secretRef: list its keys here so they can be checked"
    return names


def documented_secrets() -> set[str]:
    text = (REPO / "docs" / "operations.md").read_text()
    return set(re.findall(r"create secret (?:generic |tls )?([a-z0-9-]+)", text))


def python_containers(docs: list[dict]):
    for workload in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet")):
        spec = workload["spec"]["template"]["spec"]
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            match = IMAGE.search(c.get("image", ""))
            if match and match["service"] not in TEMPLATED:
                yield workload["metadata"]["name"], c, match["service"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_gets_every_setting_its_process_requires(rendered, overlay):
    docs = rendered[overlay]
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    secrets = documented_secrets()
    checked, missing = [], []
    for workload, container, service in python_containers(docs):
        args = container.get("args") or []
        need = required_env(settings_class(service, args), args)
        lacking = need - provided_env(container, configmaps, secrets)
        checked.append(f"{workload}/{container['name']}")
        if lacking:
            missing.append(f"{workload}/{container['name']} ({' '.join(args)}): {sorted(lacking)}")
    # every service and the edge were looked at (a renamed image must not make this pass vacuously)
    assert {"chat-edge/chat-edge", "chat/chat", "auth/auth", "ingest/media-gateway"} <= set(checked)
    assert not missing, "settings required but not provided:\n" + "\n".join(missing)


def test_required_in_prod_holds_only_real_fields():
    for service in MODULES:
        for args in (["serve"], ["edge"]) if service == "chat" else (["serve"],):
            required_env(settings_class(service, args), args)


def _selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if (expr["operator"] == "In") != (value in expr["values"]) and expr["operator"] in ("In", "NotIn"):
            return False
        if expr["operator"] == "Exists" and value is None:
            return False
    return True


def _admits(policy: dict, labels: dict, port: int) -> bool:
    for rule in policy["spec"].get("ingress", []):
        ports = {p["port"] for p in rule.get("ports", [])}
        if ports and port not in ports:
            continue
        if any("podSelector" in peer and "namespaceSelector" not in peer and _selects(peer["podSelector"], labels)
               for peer in rule.get("from", [])):
            return True
    return False


def test_prod_postgres_admits_exactly_the_pods_whose_processes_use_a_database(rendered):
    """The edges hold no database connection (chat_service.edge.natsstate): PostgreSQL's policy
    must not need them, and every process that does read DATABASE_URL must get through."""
    docs = rendered["prod"]
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "postgres")
    wrong = []
    for workload in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet")):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        spec = workload["spec"]["template"]["spec"]
        uses_db = False
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            match = IMAGE.search(c.get("image", ""))
            if match and match["service"] not in TEMPLATED:
                args = c.get("args") or []
                uses_db |= "DATABASE_URL" in required_env(settings_class(match["service"], args), args)
        if uses_db != _admits(policy, labels, 5432):
            wrong.append(f"{workload['metadata']['name']}: uses a database={uses_db}, admitted={not uses_db}")
    assert not wrong, wrong
