"""deploy/docker/Dockerfile, linted structurally (Docker is not available where the tests run):
one target per service and for the ingest and gateway, each image the manifests use has a target,
every runtime stage ends as a non-root user, Python images install from uv.lock with --frozen."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"


def stages() -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions (keyword, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            current = m.group(2) or m.group(1)
            result[current] = [("FROM", m.group(1))]
        elif current is not None:
            result[current].append((keyword, args))
    return result


def instructions(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for kw, args in stage if kw == keyword]


def resolved(all_stages, name: str) -> list[tuple[str, str]]:
    """A stage's instructions after those of the stages it is built FROM (inheritance)."""
    stage = all_stages[name]
    parent = stage[0][1]
    return (resolved(all_stages, parent) if parent in all_stages else []) + stage


def test_every_service_has_a_non_root_target_built_from_the_lock_file(services):
    all_stages = stages()
    for svc in services:
        assert svc.name in all_stages, f"deploy/docker/Dockerfile has no target {svc.name}"
        target = resolved(all_stages, svc.name)
        users = instructions(target, "USER")
        assert users and users[-1].split(":")[0] not in ("root", "0"), f"{svc.name}: last USER must be non-root"
        assert re.fullmatch(r"\d+(:\d+)?", users[-1]), "a numeric uid lets Kubernetes check runAsNonRoot"
        entrypoint = instructions(target, "ENTRYPOINT")[-1]
        assert entrypoint == f'["python", "-m", "{svc.module}"]', f"{svc.name}: {entrypoint}"
        copies = " ".join(instructions(target, "COPY"))
        build_stage = re.search(r"--from=(\S+) /app/.venv", copies).group(1)
        build = resolved(all_stages, build_stage)
        runs = " ".join(instructions(build, "RUN"))
        assert f"uv sync --frozen --no-dev --no-editable --package {svc.package}" in runs, f"{svc.name}: {runs}"
        assert any("uv.lock" in c for c in instructions(build, "COPY")), f"{build_stage}: the lock file is copied"


def test_ingest_and_gateway_targets_run_as_non_root():
    all_stages = stages()
    for name, template in (("ingest", "deploy/ingest/nginx-rtmp.conf.template"),
                           ("gateway", "deploy/gateway/nginx.conf.template")):
        target = resolved(all_stages, name)
        assert instructions(target, "USER")[-1] == "10001:10001"
        assert any(template in c for c in instructions(target, "COPY")), f"{name}: copies {template}"
    # the gateway serves hls.js from npm, installed exactly as locked
    assert any("npm ci" in r for r in instructions(all_stages["web"], "RUN"))


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_image_the_manifests_use_has_a_target(rendered, overlay):
    kustomization = yaml.safe_load((REPO / "deploy" / "k8s" / "overlays" / overlay / "kustomization.yaml").read_text())
    renamed = {i.get("newName", i["name"]): i["name"] for i in kustomization["images"]}
    targets = set(stages())
    refs = set()
    for doc in rendered[overlay]:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            spec = doc["spec"]["template"]["spec"]
            refs |= {c["image"] for c in [*spec.get("initContainers", []), *spec["containers"]]}
    ours = {ref for ref in refs if ref.rsplit(":", 1)[0] in renamed}
    assert len(ours) >= 7, "the overlay sets the images of the services, the ingest and the gateway"
    for ref in ours:
        name, _, tag = ref.rpartition(":")
        assert renamed[name].removeprefix("streamplatform/") in targets, f"{ref}: no Dockerfile target"
        # pinned by the overlay, never an implicit :latest
        assert name and tag and tag != "latest", ref
    # nothing of ours is left untagged
    assert not [ref for ref in refs if ref.startswith("streamplatform/") and ":" not in ref], refs


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context():
    ignored = (REPO / "deploy" / "docker" / "Dockerfile.dockerignore").read_text().split()
    for entry in (".git", ".data", "**/.venv", "**/node_modules"):
        assert entry in ignored


def test_entrypoint_scripts_are_valid_shell_and_python():
    subprocess.run(["sh", "-n", str(REPO / "deploy" / "docker" / "gateway-entrypoint.sh")], check=True, timeout=10)
    compile((REPO / "deploy" / "docker" / "ingest-entrypoint.py").read_text(), "ingest-entrypoint.py", "exec")
