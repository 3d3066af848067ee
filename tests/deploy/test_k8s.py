"""deploy/k8s: both overlays render, validate against the Kubernetes schemas, and hold what the
platform needs (a Deployment with probes and resources for every service and edge, non-root pods,
no committed secret values, the media gateway's hooks closed to all but the ingest, JetStream
with three replicas and fsync on every write)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from devstack.stack import hls_origin_values, parse_hls_origins

REPO = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.31.0"  # the oldest Kubernetes the manifests support (preStop `sleep` is GA-track since 1.30)
OVERLAYS = ("dev", "prod")

# Custom resources (no schema in kubernetes-validate): the operators they need are in docs/operations.md
CUSTOM_KINDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "Database"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def all_containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def selects(selector: dict, labels: dict) -> bool:
    match = selector.get("matchLabels", {})
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
        if expr["operator"] == "Exists" and value is None:
            return False
    return True


def service_workload(docs: list[dict], service: str) -> tuple[dict, dict]:
    """The workload running a service and its container: the service's Deployment, or the
    StatefulSet whose pods have a container named after it (the media gateway: each ingest node)."""
    deployment = by_kind(docs, "Deployment").get(service)
    if deployment is not None:
        return deployment, pod_spec(deployment)["containers"][0]
    for workload in workloads(docs):
        for c in pod_spec(workload)["containers"]:
            if c["name"] == service:
                return workload, c
    raise AssertionError(f"services/{service} runs in no workload")


def assert_probed_and_resourced(workload: dict) -> None:
    name = workload["metadata"]["name"]
    for c in pod_spec(workload)["containers"]:
        if re.search(r"streamplatform[-/]ingest(:|$)", c["image"]):
            assert c["livenessProbe"]["tcpSocket"] and c["readinessProbe"]["tcpSocket"], f"{name}/{c['name']}"
            continue  # nginx-rtmp speaks no HTTP: probed on its RTMP port
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{name}/{c['name']}: liveness on /healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{name}/{c['name']}: readiness on /readyz"
    for c in all_containers(workload):
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c.get("resources", {}).get(part, {})), \
                f"{name}/{c['name']}: resources.{part} needs cpu and memory"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(rendered, overlay):
    docs = rendered[overlay]
    assert len(docs) > 30
    errors = []
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            assert doc["metadata"].get("name") and isinstance(doc.get("spec"), dict)
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.utils.SchemaNotFoundError:
            errors.append(f"{doc['kind']} {doc['apiVersion']}: no schema (a custom resource? add it to CUSTOM_KINDS)")
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_deployment_with_migrations_probes_and_resources(rendered, services, overlay):
    k8s_services = by_kind(rendered[overlay], "Service")
    for svc in services:
        deployment, main = service_workload(rendered[overlay], svc.name)
        assert main["args"] == ["serve"]
        assert re.search(rf"/streamplatform[-/]{re.escape(svc.name)}:", main["image"]) or \
            main["image"].startswith(f"streamplatform/{svc.name}:"), main["image"]
        assert_probed_and_resourced(deployment)
        if svc.has_migrations:
            migrate = [c for c in pod_spec(deployment).get("initContainers", []) if c.get("args") == ["migrate"]]
            assert migrate and migrate[0]["image"] == main["image"], f"{svc.name}: migrations as an init container"
        port = main["ports"][0]["containerPort"]
        service = k8s_services.get(svc.name)
        assert service and service["spec"]["ports"][0]["port"] == port, f"{svc.name}: a Service on port {port}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_edge_has_an_autoscaled_deployment_with_probes_and_resources(rendered, services, overlay):
    edges = [s for s in services if s.has_edge]
    assert edges, "chat edges are expected (services/chat/src/chat_service/edge)"
    deployments = by_kind(rendered[overlay], "Deployment")
    hpas = by_kind(rendered[overlay], "HorizontalPodAutoscaler")
    for svc in edges:
        name = f"{svc.name}-edge"
        assert name in deployments, f"{svc.module}.edge has no Deployment {name} in overlays/{overlay}"
        deployment = deployments[name]
        assert pod_spec(deployment)["containers"][0]["args"] == ["edge"]
        assert_probed_and_resourced(deployment)
        # the autoscaler owns the replica count: a fixed one would be reset on every apply
        assert "replicas" not in deployment["spec"]
        hpa = next((h for h in hpas.values() if h["spec"]["scaleTargetRef"]["name"] == name), None)
        assert hpa is not None, f"{name}: no HorizontalPodAutoscaler"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        env = {e["name"] for e in pod_spec(deployment)["containers"][0]["env"]}
        assert "EDGE_ID" in env, "each edge needs its own EDGE_ID"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_pod_security_standard(rendered, overlay):
    for workload in workloads(rendered[overlay]):
        name = workload["metadata"]["name"]
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"].get("runAsUser", 1) != 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, f"{name}: no API token in pods that never call the API"
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), name
        for c in all_containers(workload):
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, f"{name}/{c['name']}"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{c['name']}"
            assert not sc.get("privileged"), f"{name}/{c['name']}"
    namespaces = by_kind(rendered[overlay], "Namespace")
    assert [ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] for ns in namespaces.values()] == ["restricted"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_values_are_committed(rendered, overlay):
    docs = rendered[overlay]
    assert not [d for d in docs if d["kind"] == "Secret"], "Secrets are created in the cluster, never committed"
    referenced = set()
    for workload in workloads(docs):
        for c in all_containers(workload):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])
                assert not re.search(r"(?i)(secret|password|passphrase|token)", e["name"]) or "valueFrom" in e, \
                    f"{workload['metadata']['name']}: {e['name']} must come from a Secret"
    for cluster in by_kind(docs, "Cluster").values():
        referenced.add(cluster["spec"]["bootstrap"]["initdb"]["secret"]["name"])
    operations = (REPO / "docs" / "operations.md").read_text()
    undocumented = sorted(name for name in referenced if f"secret generic {name}" not in operations
                          and f"secret {name}" not in operations)
    assert not undocumented, f"docs/operations.md must say how to create: {undocumented}"
    committed = [p for p in (REPO / "deploy").rglob("*.y*ml") if re.search(r"^kind:\s*Secret\b", p.read_text(), re.MULTILINE)]
    assert not committed, committed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_media_gateway_hooks_are_reachable_only_from_the_ingest(rendered, overlay):
    docs = rendered[overlay]
    policies = by_kind(docs, "NetworkPolicy")
    deny = [p for p in policies.values() if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]
            and "Ingress" in p["spec"]["policyTypes"]]
    assert deny, "ingress must be denied by default"
    workload, container = service_workload(docs, "media-gateway")
    labels = workload["spec"]["template"]["metadata"]["labels"]
    port = container["ports"][0]["containerPort"]
    applying = [p for p in policies.values() if selects(p["spec"]["podSelector"], labels)]
    assert applying, "no NetworkPolicy selects the media gateway"
    peers = []
    for policy in applying:
        for rule in policy["spec"].get("ingress", []):
            if not any(p["port"] == port for p in rule.get("ports", [{"port": port}])):
                continue
            assert rule.get("from"), f"{policy['metadata']['name']}: a rule without `from` admits every pod"
            peers += rule["from"]
    pod_peers = {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in peers if "podSelector" in p}
    # the callbacks come from the pod's own nginx-rtmp over 127.0.0.1; the only pod allowed in
    # from outside is the gateway, and it never routes /hooks/
    assert pod_peers == {"gateway"}, pod_peers
    ingest = next(c for c in pod_spec(workload)["containers"] if re.search(r"streamplatform[-/]ingest(:|$)", c["image"]))
    env = {e["name"]: e.get("value") for e in ingest["env"]}
    assert env["MEDIA_GATEWAY_UPSTREAM"] == f"127.0.0.1:{port}"
    gateway_conf = (REPO / "deploy" / "gateway" / "nginx.conf.template").read_text()
    assert not re.search(r"^\s*location[^{]*/hooks", gateway_conf, re.MULTILINE)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_with_replicas_have_disruption_budgets(rendered, overlay):
    docs = rendered[overlay]
    budgets = list(by_kind(docs, "PodDisruptionBudget").values())
    for workload in workloads(docs):
        replicas = workload["spec"].get("replicas")
        autoscaled = replicas is None
        if replicas == 1 and not autoscaled:
            continue
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(selects(b["spec"]["selector"], labels) for b in budgets), \
            f"{workload['metadata']['name']} ({replicas or 'autoscaled'} replicas) has no PodDisruptionBudget"
    if overlay == "prod":
        deployments = by_kind(docs, "Deployment")
        assert all(deployments[name]["spec"]["replicas"] >= 2 for name in ("auth", "channels", "gateway"))


def test_nats_is_a_three_node_jetstream_cluster_that_fsyncs_every_write(rendered, tmp_path):
    docs = rendered["prod"]
    nats = by_kind(docs, "StatefulSet")["nats"]
    assert nats["spec"]["replicas"] == 3
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    config_map = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("nats-config"))
    conf = config_map["data"]["nats.conf"]
    assert re.search(r"^\s*sync_interval:\s*always\s*$", conf, re.MULTILINE)
    routes = re.findall(r"nats://(nats-\d)\.nats-headless:6222", conf)
    assert routes == [f"nats-{i}" for i in range(3)]
    platform = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("platform-config"))
    assert platform["data"]["JETSTREAM_REPLICAS"] == "3"
    # the real server parses it (unknown fields and bad values are errors), users included
    local = conf.replace("/data", str(tmp_path / "js")).replace("/var/run/nats", str(tmp_path))
    (tmp_path / "nats.conf").write_text(local)
    (tmp_path / "authorization.conf").write_text(config_map["data"]["authorization.conf"])
    from contracts.access import ADMIN_USER, USERS
    from devstack.credentials import password_variable

    passwords = {password_variable(u): "x" for u in [ADMIN_USER, *USERS]}
    server = Path(sys.executable).with_name("nats-server")
    result = subprocess.run([str(server), "-t", "-c", str(tmp_path / "nats.conf")], capture_output=True, text=True,
                            timeout=20, env={**os.environ, **passwords, "POD_NAME": "nats-0"})
    assert result.returncode == 0, result.stderr


def test_gateway_environment_fills_every_template_placeholder(rendered, tmp_path):
    gateway = by_kind(rendered["prod"], "Deployment")["gateway"]
    env = {e["name"]: e["value"] for e in pod_spec(gateway)["containers"][0]["env"]}
    template = REPO / "deploy" / "gateway" / "nginx.conf.template"
    # the entrypoint writes these two from HLS_ORIGINS
    derived = set(hls_origin_values({"n": "h:1"}))
    needed = set(re.findall(r"\{\{\s*([A-Z0-9_]+)\s*\}\}", template.read_text())) - derived | {"HLS_ORIGINS"}
    assert needed <= set(env), f"the gateway Deployment does not set {sorted(needed - set(env))}"
    env["PREFIX"] = str(tmp_path / "nginx")
    result = subprocess.run(["sh", str(REPO / "deploy" / "docker" / "gateway-entrypoint.sh")], capture_output=True,
                            text=True, timeout=20,
                            env={"PATH": os.environ["PATH"], **env, "GATEWAY_TEMPLATE": str(template), "RENDER_ONLY": "1"})
    assert result.returncode == 0, result.stderr
    conf = (tmp_path / "nginx" / "nginx.conf").read_text()
    assert "{{" not in conf
    assert "server auth:8101;" in conf and "listen 8080;" in conf and "server chat-edge:8111;" in conf
    # the same HLS routing devstack writes: an upstream per ingest node, and the map to it
    for text in hls_origin_values(parse_hls_origins(env["HLS_ORIGINS"])).values():
        assert text in conf
    # a missing value stops the start with the placeholder's name
    del env["AUTH_UPSTREAM"]
    result = subprocess.run(["sh", str(REPO / "deploy" / "docker" / "gateway-entrypoint.sh")], capture_output=True,
                            text=True, timeout=20,
                            env={"PATH": os.environ["PATH"], **env, "GATEWAY_TEMPLATE": str(template), "RENDER_ONLY": "1"})
    assert result.returncode != 0 and "AUTH_UPSTREAM" in result.stderr


def test_ingest_renders_its_config_with_the_cluster_addresses(rendered):
    docs = rendered["prod"]
    ingest_set = by_kind(docs, "StatefulSet")["ingest"]
    containers = {c["name"]: c for c in pod_spec(ingest_set)["containers"]}
    env = {e["name"]: e["value"] for e in containers["ingest"]["env"] if "value" in e}
    result = subprocess.run([sys.executable, str(REPO / "deploy" / "docker" / "ingest-entrypoint.py")],
                            capture_output=True, text=True, timeout=30,
                            env={**os.environ, **env, "RENDER_ONLY": "1", "INGEST_LADDER": "source,480p",
                                 "INGEST_TEMPLATE": str(REPO / "deploy" / "ingest" / "nginx-rtmp.conf.template")})
    assert result.returncode == 0, result.stderr
    conf = result.stdout
    # nginx-rtmp and the media gateway of one node reach each other on 127.0.0.1 only
    http = containers["media-gateway"]["ports"][0]["containerPort"]
    assert f"on_publish http://127.0.0.1:{http}/hooks/rtmp/publish;" in conf
    assert "record_path /data/recordings;" in conf and "hls_path" not in conf  # HLS is the media gateway's
    assert "{{" not in conf
    media_env = {e["name"]: e for e in containers["media-gateway"]["env"]}
    assert env["CONTROL_LISTEN"].startswith("127.0.0.1:")
    assert media_env["INGEST_CONTROL_URL"]["value"] == f"http://{env['CONTROL_LISTEN']}/control"
    rtmp = containers["ingest"]["ports"][0]["containerPort"]
    assert media_env["INGEST_RTMP_URL"]["value"] == f"rtmp://127.0.0.1:{rtmp}"
    # the node's name is the pod's
    assert media_env["INGEST_NODE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # nginx-rtmp faces the internet and holds no credential
    assert not [e for e in containers["ingest"]["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert not containers["ingest"].get("envFrom")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_nodes_are_a_stateful_set_the_gateway_routes_hls_to_by_node(rendered, overlay):
    docs = rendered[overlay]
    ingest_set = by_kind(docs, "StatefulSet")["ingest"]
    replicas = ingest_set["spec"]["replicas"]
    assert replicas >= 2, "ingest on several nodes (issue 13)"
    nodes = [f"ingest-{i}" for i in range(replicas)]
    services = by_kind(docs, "Service")
    http = next(c for c in pod_spec(ingest_set)["containers"] if c["name"] == "media-gateway")["ports"][0]
    # one stable Service per node, selecting exactly that pod (the StatefulSet controller's label)
    for node in nodes:
        selector = services[node]["spec"]["selector"]
        assert selector["statefulset.kubernetes.io/pod-name"] == node
        assert selects({"matchLabels": {k: v for k, v in selector.items()
                                        if k != "statefulset.kubernetes.io/pod-name"}},
                       ingest_set["spec"]["template"]["metadata"]["labels"])
        assert services[node]["spec"]["ports"][0]["port"] == http["containerPort"]
    gateway = by_kind(docs, "Deployment")["gateway"]
    gateway_env = {e["name"]: e["value"] for e in pod_spec(gateway)["containers"][0]["env"]}
    assert parse_hls_origins(gateway_env["HLS_ORIGINS"]) == {n: f"{n}:{http['containerPort']}" for n in nodes}
    # encoders are balanced over every node at L4
    rtmp = services["ingest-rtmp"]
    assert rtmp["spec"]["type"] == ("LoadBalancer" if overlay == "prod" else "NodePort")  # dev: no cloud LB
    assert selects({"matchLabels": rtmp["spec"]["selector"]}, ingest_set["spec"]["template"]["metadata"]["labels"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_srt_ingest_is_a_udp_port_of_every_ingest_node_behind_its_own_service(rendered, overlay):
    """docs/srt.md: each node's media gateway listens on SRT_PORT (UDP), a UDP Service spreads
    encoders over the nodes, the NetworkPolicy lets them in, and channels is told the public URL."""
    docs = rendered[overlay]
    ingest_set = by_kind(docs, "StatefulSet")["ingest"]
    media = next(c for c in pod_spec(ingest_set)["containers"] if c["name"] == "media-gateway")
    env = {e["name"]: e.get("value") for e in media["env"]}
    srt_port = next(p for p in media["ports"] if p["name"] == "srt")
    assert srt_port["protocol"] == "UDP" and int(env["SRT_PORT"]) == srt_port["containerPort"]
    srt = by_kind(docs, "Service")["ingest-srt"]
    assert srt["spec"]["type"] == ("LoadBalancer" if overlay == "prod" else "NodePort")
    assert srt["spec"]["ports"] == [{"name": "srt", "port": srt_port["containerPort"], "targetPort": "srt",
                                     "protocol": "UDP"}]
    assert selects({"matchLabels": srt["spec"]["selector"]}, ingest_set["spec"]["template"]["metadata"]["labels"])
    policy = by_kind(docs, "NetworkPolicy")["ingest"]
    public = [rule for rule in policy["spec"]["ingress"] if "from" not in rule]
    assert {"port": srt_port["containerPort"], "protocol": "UDP"} in [p for rule in public for p in rule["ports"]]
    platform = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("platform-config"))
    assert platform["data"]["SRT_URL"].startswith("srt://")
    assert platform["data"]["SRT_URL"].endswith(f":{srt_port['containerPort']}")


def test_base_and_overlays_are_plain_yaml_without_tabs():
    for path in (REPO / "deploy" / "k8s").rglob("*.yaml"):
        text = path.read_text()
        assert "\t" not in text, path
        list(yaml.safe_load_all(text))


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("target", ["nats", "valkey"])
def test_only_the_services_reach_nats_and_valkey(rendered, overlay, target):
    """The gateway has no business on NATS or Valkey (issue 14 item 13). The ingest nodes do, for
    the media gateway in each: their nginx-rtmp shares its network and holds no credential
    (test_ingest_renders_its_config_with_the_cluster_addresses)."""
    docs = rendered[overlay]
    policies = by_kind(docs, "NetworkPolicy")
    pods = {w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"] for w in workloads(docs)}
    target_labels = pods[target]
    admitted = set()
    for policy in policies.values():
        if not selects(policy["spec"]["podSelector"], target_labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from"), f"{policy['metadata']['name']}: a rule without `from` admits every pod"
            for peer in rule["from"]:
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    admitted |= {name for name, labels in pods.items() if selects(peer["podSelector"], labels)}
    assert "gateway" not in admitted, admitted
    assert {"auth", "channels", "streams", "chat", "chat-edge", "ingest"} <= admitted, admitted


def test_prod_publishes_the_chat_edges_at_an_l4_address_the_pages_use(rendered):
    """The edges behind a LoadBalancer Service of their own (no HTTP proxy per frame), its port
    open to clients, and the gateway telling the pages that address (docs/benchmarks.md "The
    gateway for WebSockets"); the base (dev) keeps chat on the gateway's /ws."""
    docs = rendered["prod"]
    service = by_kind(docs, "Service")["chat-edge-public"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "chat-edge"}
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["ws"]
    edge = by_kind(docs, "Deployment")["chat-edge"]
    ports = {p["name"]: p["containerPort"] for p in pod_spec(edge)["containers"][0]["ports"]}
    policy = by_kind(docs, "NetworkPolicy")["chat-edge-public"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "chat-edge"}
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [ports["ws"]]
    assert all("from" not in rule for rule in policy["spec"]["ingress"])  # the balancer keeps clients' addresses

    def chat_ws_url(overlay):
        gateway = by_kind(rendered[overlay], "Deployment")["gateway"]
        return {e["name"]: e["value"] for e in pod_spec(gateway)["containers"][0]["env"]}["CHAT_WS_URL"]

    assert chat_ws_url("prod").startswith("wss://")
    assert chat_ws_url("dev") == ""
    assert "chat-edge-public" not in by_kind(rendered["dev"], "Service")


def test_gateway_entrypoint_refuses_a_chat_address_that_is_not_a_plain_ws_url(rendered, tmp_path):
    gateway = by_kind(rendered["prod"], "Deployment")["gateway"]
    env = {e["name"]: e["value"] for e in pod_spec(gateway)["containers"][0]["env"]}
    template = REPO / "deploy" / "gateway" / "nginx.conf.template"
    for value, ok in (("wss://chat.example.com/ws", True), ('wss://x/ws" onload="x', False),
                      ("wss://x/ws; script-src *", False)):
        env.update(PREFIX=str(tmp_path / "nginx"), CHAT_WS_URL=value)
        result = subprocess.run(["sh", str(REPO / "deploy" / "docker" / "gateway-entrypoint.sh")], capture_output=True,
                                text=True, timeout=20,
                                env={"PATH": os.environ["PATH"], **env, "GATEWAY_TEMPLATE": str(template),
                                     "RENDER_ONLY": "1"})
        assert (result.returncode == 0) is ok, (value, result.stderr)
        if ok:
            assert f"connect-src 'self' {value}" in (tmp_path / "nginx" / "nginx.conf").read_text()
        else:
            assert "CHAT_WS_URL" in result.stderr
