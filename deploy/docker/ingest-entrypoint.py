"""The RTMP ingest in a container: render deploy/ingest/nginx-rtmp.conf.template with the code
`make run` uses, then become nginx (logs on stdout/stderr, so `kubectl logs` shows them).

Environment (defaults fit deploy/k8s): INGEST_PREFIX, RTMP_LISTEN, MEDIA_GATEWAY_UPSTREAM,
RECORD_ROOT, CONTROL_LISTEN, SOURCE_PLAY_ALLOW, INGEST_LADDER (only checked); RENDER_ONLY=1 prints the config
and exits (used by the tests). The error log stays at `warn`: nginx-rtmp logs stream keys at `info`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from media_gateway.ingest.nginx_conf import render_ingest_config

TEMPLATE = Path(os.environ.get("INGEST_TEMPLATE", "/etc/streamplatform/nginx-rtmp.conf.template"))


def values_from_env(env: dict[str, str]) -> dict[str, str]:
    return {
        "USER_DIRECTIVE": "",  # the container already runs as an unprivileged user
        "PREFIX": env.get("INGEST_PREFIX", "/tmp/ingest"),
        "RTMP_LISTEN": env.get("RTMP_LISTEN", "0.0.0.0:1935"),
        "MEDIA_GATEWAY_UPSTREAM": env.get("MEDIA_GATEWAY_UPSTREAM", "media-gateway:8105"),
        "RECORD_ROOT": env.get("RECORD_ROOT", "/data/recordings"),
        "CONTROL_LISTEN": env.get("CONTROL_LISTEN", "0.0.0.0:8186"),
        "SOURCE_PLAY_ALLOW": env.get("SOURCE_PLAY_ALLOW", ""),
    }


def main() -> None:
    values = values_from_env(dict(os.environ))
    text = render_ingest_config(values, template=TEMPLATE.read_text(), ladder=os.environ.get("INGEST_LADDER"))
    if os.environ.get("RENDER_ONLY") == "1":
        sys.stdout.write(text)
        return
    prefix = Path(values["PREFIX"])
    for folder in (prefix / "logs", prefix / "tmp", Path(values["RECORD_ROOT"])):
        folder.mkdir(parents=True, exist_ok=True)
    for name, stream in (("error.log", "/dev/stderr"), ("rtmp-access.log", "/dev/stdout")):
        link = prefix / "logs" / name
        link.unlink(missing_ok=True)
        link.symlink_to(stream)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    os.execvp("nginx", ["nginx", "-p", str(prefix), "-c", str(conf), "-e", "/dev/stderr", "-g", "daemon off;"])


if __name__ == "__main__":
    main()
