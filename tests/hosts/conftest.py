"""The rehearsal on network namespaces (tests/hosts/harness.py): marked `cluster`, as the loopback
rehearsal is; it needs root (ip netns, bind mounts), which the project's tests and CI have."""

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from contracts.access import ADMIN_USER, USERS

sys.path.insert(0, str(Path(__file__).parent))  # harness.py, launch.py


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.cluster)
            if os.geteuid() != 0 or shutil.which("ip") is None:
                item.add_marker(pytest.mark.skip(reason="network namespaces need root and iproute2"))


@pytest.fixture
def cluster_secrets() -> dict[str, dict[str, str]]:
    return platform_secrets()


def platform_secrets() -> dict[str, dict[str, str]]:
    """The Secrets docs/operations.md says to create, with throwaway values."""
    key_id, secret = secrets.token_hex(12), secrets.token_hex(24)
    s3_config = ('{"identities":[{"name":"anonymous","actions":["Read:streamplatform-media"]},'
                 '{"name":"platform","credentials":[{"accessKey":"%s","secretKey":"%s"}],'
                 '"actions":["Admin","Read","List","Tagging","Write"]}]}' % (key_id, secret))
    return {
        "postgres-app": {"username": "platform", "password": secrets.token_hex(16)},
        "auth-signing": {"passphrase": secrets.token_hex(32)},
        "object-store": {"access-key-id": key_id, "secret-access-key": secret},
        "seaweedfs-s3-config": {"s3.json": s3_config},
        # one password per NATS user (contracts.access), Valkey's requirepass
        "nats-users": {user: secrets.token_hex(24) for user in [ADMIN_USER, *USERS]},
        "valkey": {"password": secrets.token_hex(24)},
    }


@pytest.fixture
def rehearsal_root():
    with _root() as root:
        yield root


@contextlib.contextmanager
def _root():
    # not under /tmp: the containers get an emptyDir bound over their /tmp
    root = Path(tempfile.mkdtemp(prefix="sp-hosts-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# the media gateway runs in the ingest nodes (the `ingest` StatefulSet: two nodes in the base)
SERVICES = ["auth", "channels", "streams", "chat"]


@pytest.fixture(scope="package")
def platform():
    """The dev overlay's workloads at the scale issue 13 asks of the rehearsal: three NATS nodes,
    two copies of every service, three chat edges, two ingest nodes; one for every test that needs it, and the fault
    test (test_partitions_and_kills_on_hosts.py) runs after the others, since it breaks things."""
    from harness import Rehearsal, render

    replicas = {name: 2 for name in SERVICES} | {"chat-edge": 3}
    with _root() as root, Rehearsal(render("dev"), platform_secrets(), root, replicas=replicas,
                                    subnet=1) as rehearsal:
        rehearsal.up([["nats", "valkey", "seaweedfs", "postgres"], SERVICES + ["chat-edge", "ingest"],
                      ["gateway"]])
        yield rehearsal
