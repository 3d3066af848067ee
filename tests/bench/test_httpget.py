"""The LL-HLS load generator's HTTP client (bench/_httpget.mjs, JavaScript: the generator is
Node.js): its own tests (`node --test`) against node:http, raw sockets and the Debian nginx."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")


def test_the_http_client_tests_pass():
    run = subprocess.run(["node", "--test", str(ROOT / "tests" / "bench" / "httpget.test.mjs")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout
