"""The pytest plugin's servers do not outlive a test run stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path


def _accepts(url: str) -> bool:
    host, port = url.removeprefix("nats://").rsplit("@", 1)[-1].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def test_sigterm_to_pytest_stops_the_test_servers(tmp_path: Path):
    marker = tmp_path / "nats-url"
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(f"""
        import time
        from pathlib import Path

        def test_waits(test_servers):
            Path({str(marker)!r}).write_text(test_servers.nats_url)
            time.sleep(120)
    """))
    env = {k: v for k, v in os.environ.items()
           if k not in ("TEST_NATS_URL", "TEST_POSTGRES_DSN", "TEST_REDIS_URL", "TEST_BACKEND")}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-p", "no:cov", str(tmp_path / "test_inner.py")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the inner run never started its servers"
            time.sleep(0.2)
        nats_url = marker.read_text()
        assert _accepts(nats_url)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _accepts(nats_url), "NATS outlived the test run"
