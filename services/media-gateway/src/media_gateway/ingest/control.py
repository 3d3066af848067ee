"""The nginx-rtmp control module: drop a live publisher at once (key rotated, stream ended)."""

from __future__ import annotations

import logging

import httpx

log = logging.getLogger("media_gateway.ingest.control")


class NginxControl:
    def __init__(self, base_url: str | None, app: str, timeout: float = 2.0,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.base_url = base_url.rstrip("/") if base_url else None
        self.app = app
        self.timeout = timeout
        self.transport = transport

    async def drop_publisher(self, relay_name: str, session_id: str, *, app: str | None = None) -> int | None:
        """Drop the publisher nginx-rtmp knows as `relay_name` (in the encoders' application unless
        `app` says otherwise); returns how many it dropped.

        Best effort: None when no control URL is configured or nginx did not answer (on_update
        refusals still end the publish within notify_update_timeout).
        """
        if self.base_url is None:
            return None
        url = f"{self.base_url}/drop/publisher"
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
                r = await client.get(url, params={"app": app or self.app, "name": relay_name})
        except httpx.HTTPError as exc:
            log.warning("ingest drop failed", extra={"sessionId": session_id, "error": str(exc)})
            return None
        if r.status_code != 200:
            log.warning("ingest drop refused", extra={"sessionId": session_id, "status": r.status_code})
            return None
        try:
            dropped = int(r.text.strip() or 0)
        except ValueError:
            dropped = 0
        log.info("ingest dropped", extra={"sessionId": session_id, "app": app or self.app, "dropped": dropped})
        return dropped
