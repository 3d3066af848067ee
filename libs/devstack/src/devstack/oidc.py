"""A real OpenID Connect provider for tests: panva's `oidc-provider` (npm, pinned in tests/oidc/),
run with node on a free loopback port. See tests/oidc/provider.js for its accounts and interaction.

It signs with an RSA key made here, so a test can also sign tokens with the very key the provider
publishes (wrong audience, wrong issuer, expired) and check that the platform refuses them for the
claim, not for an unknown key.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from devstack.ports import free_port

PROVIDER_DIR = Path(__file__).resolve().parents[4] / "tests" / "oidc"


class TestOidcProvider:
    __test__ = False  # not a pytest test class

    def __init__(self, redirect_uris: list[str], *, client_id: str = "streamplatform",
                 client_secret: str = "test-client-secret-0123456789abcdef"):
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id, self.client_secret = client_id, client_secret
        self.redirect_uris = redirect_uris
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.proc: subprocess.Popen | None = None

    def settings_entry(self, display_name: str = "Test OIDC", webhook_secret: str | None = None) -> dict:
        entry = {"issuer": self.issuer, "client_id": self.client_id, "client_secret": self.client_secret,
                 "display_name": display_name}
        if webhook_secret:
            entry["webhook_secret"] = webhook_secret
        return entry

    def start(self) -> Self:
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError("tests/oidc/node_modules is missing: run `make setup` (oidc-deps)")
        jwk = RSAAlgorithm.to_jwk(self.private_key, as_dict=True) | {"kid": self.kid, "use": "sig", "alg": "RS256"}
        clients = [{"client_id": self.client_id, "client_secret": self.client_secret,
                    "redirect_uris": self.redirect_uris, "grant_types": ["authorization_code"],
                    "response_types": ["code"], "token_endpoint_auth_method": "client_secret_basic"}]
        env = {**os.environ, "OIDC_PORT": str(self.port), "OIDC_ISSUER": self.issuer,
               "OIDC_CLIENTS": json.dumps(clients), "OIDC_JWKS": json.dumps({"keys": [jwk]}),
               "OIDC_PARENT_PID": str(os.getpid()), "NODE_ENV": "test"}
        # a file, not a pipe: nobody reads a pipe after start-up, and a full one would block node
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  (open as long as node runs; closed in stop)
        self.proc = subprocess.Popen(["node", "provider.js"], cwd=PROVIDER_DIR, env=env,
                                     stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.seek(0)
                raise RuntimeError(f"oidc-provider exited: {self._log.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("oidc-provider did not start within 60 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
