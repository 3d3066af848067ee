"""Passwords of the NATS users and of Valkey, and the nats-server authorization they go into.

`make run` keeps them in `<data dir>/credentials.json` (mode 0600, created on first start) so a
developer's tools keep working across restarts; the tests make new ones per run. They are handed
to the services inside NATS_URL / REDIS_URL and never printed: the banner names the file.

`render_authorization` writes the nats-server `authorization {}` block from the permission table
(contracts.access). With `passwords=None` it writes `$NATS_PASSWORD_<USER>` variables instead,
which nats-server takes from its environment: that is the text in deploy/k8s/base/nats.yaml,
whose passwords come from the Secret `nats-users`.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from contracts.access import ADMIN_USER, USERS, permissions


def _password() -> str:
    # hex: safe inside a URL's userinfo and a nats-server config string without quoting rules
    return secrets.token_hex(24)


@dataclass(frozen=True)
class Credentials:
    nats: dict[str, str]
    """NATS user -> password: every service user and the admin."""
    valkey: str
    simulcast_key: str = ""
    """Fernet key channels encrypts simulcast destinations' stream keys with (SIMULCAST_ENCRYPTION_KEY)."""

    @classmethod
    def generate(cls) -> Credentials:
        return cls({user: _password() for user in [ADMIN_USER, *USERS]}, _password(), _fernet_key())

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        """The passwords kept in `path`; users added to the table since get one (and are saved)."""
        try:
            data = json.loads(path.read_text())
            creds = cls(dict(data["nats"]), str(data["valkey"]), str(data.get("simulcast", "")))
        except (FileNotFoundError, KeyError, TypeError, ValueError):
            creds = cls.generate()
        missing = [u for u in [ADMIN_USER, *USERS] if u not in creds.nats]
        # a data folder older than simulcast gets its key now (and keeps it: stored keys need it)
        creds = cls({**creds.nats, **{u: _password() for u in missing}}, creds.valkey,
                    creds.simulcast_key or _fernet_key())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"nats": creds.nats, "valkey": creds.valkey, "simulcast": creds.simulcast_key}, f, indent=2)
        os.chmod(path, 0o600)
        return creds

    def nats_url(self, address: str, user: str = ADMIN_USER) -> str:
        """`nats://user:password@host:port` for one address (`host:port`)."""
        return f"nats://{quote(user, safe='')}:{quote(self.nats[user], safe='')}@{address}"

    def redis_url(self, address: str, db: int = 0) -> str:
        return f"redis://:{quote(self.valkey, safe='')}@{address}/{db}"


def _fernet_key() -> str:
    # Fernet.generate_key()'s format (32 random bytes, URL-safe base64) without importing cryptography here
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def password_variable(user: str) -> str:
    return "NATS_PASSWORD_" + user.upper().replace("-", "_")


def render_authorization(passwords: Mapping[str, str] | None) -> str:
    """The nats-server `authorization {}` block: the admin (everything) and every service user
    with its permissions. `passwords=None` writes `$NATS_PASSWORD_<USER>` variables instead."""

    def password(user: str) -> str:
        return f"${password_variable(user)}" if passwords is None else json.dumps(passwords[user])

    lines = ["authorization {", "  users: ["]
    lines.append(f"    {{user: {json.dumps(ADMIN_USER)}, password: {password(ADMIN_USER)}}}")
    for user in USERS:
        p = permissions(user)
        lines.append(f"    {{user: {json.dumps(user)}, password: {password(user)}, permissions: {{")
        lines.append(f"      publish: {{allow: {_list(p.publish, 8)}}}")
        lines.append(f"      subscribe: {{allow: {_list(p.subscribe, 8)}}}")
        if p.allow_responses:
            lines.append("      allow_responses: true")
        lines.append("    }}")
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def _list(items, indent: int) -> str:
    pad = " " * indent
    return "[\n" + "".join(f"{pad}{json.dumps(i)}\n" for i in items) + " " * (indent - 2) + "]"
