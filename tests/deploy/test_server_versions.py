"""The servers the tests run are the servers the manifests deploy: same release line of NATS, Valkey
and SeaweedFS (major.minor), same PostgreSQL major, image tags pinned (no `latest`, no bare major).

A JetStream, Valkey or PostgreSQL behaviour the suite relies on is only proven for the version it
ran against; a manifest a major version away deploys something nobody tested.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from devstack import servers

# which containers run which server, by image repository (the last path part, registry left out)
SERVERS = {"nats": "nats", "valkey": "valkey", "seaweedfs": "seaweedfs", "postgres": "postgres",
           "postgresql": "postgres"}
SAME = {"nats": 2, "valkey": 2, "seaweedfs": 2, "postgres": 1}  # version parts that must match


def _version(argv: list[str], pattern: str) -> tuple[int, ...]:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    m = re.search(pattern, out.stdout + out.stderr)
    assert m, f"no version in the output of {argv[0]}: {out.stdout}{out.stderr}"
    return tuple(int(p) for p in m.group(1).split("."))


def tested_versions() -> dict[str, tuple[int, ...]]:
    """What devstack starts for the tests (and `make run`)."""
    return {
        "nats": _version([servers.nats_server_binary(), "--version"], r"v(\d+\.\d+\.\d+)"),
        "valkey": _version([servers.valkey_server_binary(), "--version"], r"v=(\d+\.\d+\.\d+)"),
        "seaweedfs": _version([servers.weed_binary(), "version"], r"(\d+\.\d+)"),
        "postgres": _version([str(servers.postgres_bin_dir() / "postgres"), "--version"], r"(\d+\.\d+)"),
    }


def deployed_images(docs: list[dict]) -> list[tuple[str, str]]:
    """(server, image) for every container or CloudNativePG cluster that runs one of SERVERS."""
    found = []
    for doc in docs:
        spec = doc.get("spec") or {}
        images = []
        if doc.get("kind") == "Cluster" and spec.get("imageName"):  # CloudNativePG
            images.append(spec["imageName"])
        pod = (spec.get("template") or {}).get("spec") or {}
        images += [c["image"] for c in pod.get("containers", []) + pod.get("initContainers", [])]
        for image in images:
            repository = image.rsplit(":", 1)[0].rsplit("/", 1)[-1]
            if repository in SERVERS:
                found.append((SERVERS[repository], image))
    return found


def tag_version(image: str) -> tuple[int, ...]:
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    m = re.match(r"(\d+(?:\.\d+)*)", tag)
    assert m, f"{image}: the tag names no version"
    return tuple(int(p) for p in m.group(1).split("."))


@pytest.fixture(scope="module")
def tested() -> dict[str, tuple[int, ...]]:
    return tested_versions()


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_server_image_is_the_release_line_the_tests_run(rendered, tested, overlay):
    images = deployed_images(rendered[overlay])
    assert {server for server, _ in images} >= {"nats", "valkey", "postgres"}, images
    for server, image in images:
        deployed, ran = tag_version(image), tested[server]
        n = SAME[server]
        assert deployed[:n] == ran[:n], (
            f"{overlay}: {image} deploys {server} {'.'.join(map(str, deployed))}, the tests run "
            f"{'.'.join(map(str, ran))}: change whichever is wrong (docs/decisions.md)")


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_server_images_are_pinned_to_a_release(rendered, overlay):
    for server, image in deployed_images(rendered[overlay]):
        # a bare major (`postgres:16`) or `latest` moves under a running cluster on the next pull
        assert len(tag_version(image)) >= 2, f"{overlay}: {image} is not pinned to a release"


def test_the_version_parser_reads_registries_and_cnpg():
    docs = [{"kind": "Cluster", "spec": {"imageName": "ghcr.io/cloudnative-pg/postgresql:16.2"}},
            {"kind": "StatefulSet", "spec": {"template": {"spec": {"containers": [
                {"image": "registry.local:5000/nats:2.15.1-alpine"}, {"image": "busybox:1.36"}]}}}}]
    assert deployed_images(docs) == [("postgres", "ghcr.io/cloudnative-pg/postgresql:16.2"),
                                     ("nats", "registry.local:5000/nats:2.15.1-alpine")]
    assert tag_version("registry.local:5000/nats:2.15.1-alpine") == (2, 15, 1)
