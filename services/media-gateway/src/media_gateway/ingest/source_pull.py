"""src's pull of a new session's source, started before on_publish answers.

nginx-rtmp's live applications keep no GOP cache: whoever joins a stream after the encoder's first
key frame waits for the next one (a whole key-frame interval). A push from `live` to `src` joins
only after its own RTMP handshake, which loses that race nearly every time; so instead `src`
*pulls* from `live` (over a unix socket), and the pull is started here, before the encoder is told
to go ahead: a paused play of src/<session>_src makes nginx-rtmp pull live/<session>_src, which
waits in `live` as a player of a stream that does not exist yet. Then on_publish answers with a
local rename to that name, and the pull gets the encoder's first frame.

The paused play is held for the session's life (the pull ends when its last player leaves; the
transcoder is another one). When the session ends, `release` closes it and drops src's publisher:
in `live` the pull would otherwise wait for a publisher that is not coming back, and the recording
would never be closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable

import httpx

from media_gateway.config import Settings
from media_gateway.ingest.control import NginxControl
from media_gateway.ingest.rtmp_client import RtmpError, RtmpPlayer
from media_gateway.ingest.stats import app_streams

log = logging.getLogger("media_gateway.ingest.source_pull")

SOURCE_APP = "src"  # the internal application that writes the source rendition and records
STAT_POLL_SECONDS = 0.002


class SourcePulls:
    def __init__(self, settings: Settings, control: NginxControl,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.control = control
        self._players: dict[str, RtmpPlayer] = {}
        # called with the session id whenever a session is let go (its transcoder stops there)
        self.on_release: list[Callable[[str], Awaitable[None]]] = []
        # one client for the process, made now: a new httpx client loads the CA bundle (~30 ms)
        self._http = httpx.AsyncClient(timeout=1.0, transport=transport) \
            if settings.ingest_source_pull and settings.ingest_stat else None

    @property
    def enabled(self) -> bool:
        return self.settings.ingest_source_pull

    def holds(self, session_id: str) -> bool:
        player = self._players.get(session_id)
        return player is not None and not player.closed

    async def start(self, session_id: str, stream_name: str) -> bool:
        """Start src's pull of `stream_name` and wait until it waits in `live`; False when it could not.

        Never raises: the caller falls back to the push, which works, one key frame later.
        """
        if not self.enabled:
            return False
        started = time.monotonic()
        timeout = self.settings.source_pull_timeout_seconds
        host, port = self.settings.ingest_rtmp_address
        try:
            player = await RtmpPlayer.play(host, port, SOURCE_APP, stream_name, timeout=timeout)
        except (OSError, RtmpError, TimeoutError, EOFError, ValueError) as exc:
            log.warning("source pull not started; pushing instead", extra={"sessionId": session_id,
                                                                             "error": repr(exc)})
            return False
        try:
            await self._wait_until_waiting(stream_name, started + timeout)
        except (httpx.HTTPError, ET.ParseError, TimeoutError) as exc:
            await player.close()
            log.warning("source pull not confirmed; pushing instead", extra={"sessionId": session_id,
                                                                               "error": repr(exc)})
            return False
        self._players[session_id] = player

        def forget() -> None:  # nginx closed it: src's publisher was dropped, maybe by another replica
            if self._players.get(session_id) is player:
                del self._players[session_id]

        player.when_closed(forget)
        log.info("source pull started", extra={"sessionId": session_id,
                                               "ms": round((time.monotonic() - started) * 1000, 1)})
        return True

    async def _wait_until_waiting(self, stream_name: str, deadline: float) -> None:
        """Poll rtmp_stat until `live` lists the stream with a client (the pull's player).

        The play above is confirmed before nginx-rtmp's pull has connected to `live`; answering
        on_publish in between would let the encoder's first frames go by again.
        """
        url = self.settings.ingest_stat
        if url is None or self._http is None:  # nothing to ask: the pull's handshake takes about 2 ms
            await asyncio.sleep(0.01)
            return
        while True:
            r = await self._http.get(url)
            r.raise_for_status()
            if live_stream_has_clients(r.content, self.settings.ingest_app, stream_name):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the pull of {stream_name} did not reach {self.settings.ingest_app}")
            await asyncio.sleep(STAT_POLL_SECONDS)

    async def release(self, session_id: str, stream_name: str) -> None:
        """The session ended: let go of the pull, drop src's publisher (its transcoder then reads the
        end of the stream) and run the release hooks (idempotent)."""
        player = self._players.pop(session_id, None)
        if player is not None:
            await player.close()
        if self.enabled:
            await self.control.drop_publisher(stream_name, session_id, app=SOURCE_APP)
        for hook in self.on_release:
            try:
                await hook(session_id)
            except Exception as exc:  # noqa: BLE001  one hook's failure must not keep the others from running
                log.warning("release hook failed", extra={"sessionId": session_id, "error": repr(exc)})

    async def close(self) -> None:
        """Shutting down: close the plays without dropping anything (the transcoder holds the pulls
        across a restart of this service; `start` takes them over again for open sessions)."""
        players, self._players = list(self._players.values()), {}
        await asyncio.gather(*(p.close() for p in players), return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def live_stream_has_clients(stat_xml: bytes, app: str, stream_name: str) -> bool:
    for stream in app_streams(stat_xml, app):
        if stream.findtext("name") == stream_name:
            return int(stream.findtext("nclients") or 0) > 0
    return False
