"""Mux Video and Cloudflare Stream over their documented HTTP APIs (plain httpx: the handful of
calls below does not justify either SDK and its dependency tree).

Mux (https://docs.mux.com/api-reference/video/live-streams): HTTP Basic with the access token's
id and secret; `POST /video/v1/live-streams` (201, `{data: live stream}`),
`POST /video/v1/live-streams/{id}/reset-stream-key` (201, `{data: live stream}`),
`PUT /video/v1/live-streams/{id}/complete` (200), `DELETE /video/v1/live-streams/{id}` (204).

Cloudflare Stream (https://developers.cloudflare.com/api/resources/stream/subresources/live_inputs/):
`Authorization: Bearer <API token>`; `POST /accounts/{account}/stream/live_inputs`,
`PUT /accounts/{account}/stream/live_inputs/{uid}`, `DELETE .../{uid}`; answers are
`{result, success, errors, messages}`. Live inputs have no key reset: a new input replaces the old.

Nothing here logs or raises with a stream key, a passphrase or a credential in its text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import httpx

from channels_service.config import Settings

log = logging.getLogger("channels.providers")

MUX = "mux"
CLOUDFLARE = "cloudflare"
LOCAL = "local"
PROVIDERS = (LOCAL, MUX, CLOUDFLARE)
NAMES = {MUX: "Mux", CLOUDFLARE: "Cloudflare Stream"}


class ProviderError(Exception):
    """The provider did not do what we asked. `status` is ours to answer: 503 when it could not be
    reached (worth a retry), 502 when it answered with an error or something we cannot read."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class NotConfigured(Exception):
    def __init__(self, provider: str, variables: str):
        super().__init__(f"{NAMES[provider]} is not configured on this server ({variables} unset).")
        self.provider = provider


@dataclass
class ProvisionedStream:
    """What a provider gave us for one channel; `stream_key` and `srt_url` are secrets."""

    provider: str
    stream_id: str
    stream_key: str = field(repr=False)
    rtmp_url: str
    srt_url: str | None = field(default=None, repr=False)
    playback_id: str | None = None
    playback_url: str | None = None


def _secret(value) -> str | None:
    if value is None:
        return None
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return text or None


def missing_settings(settings: Settings, provider: str) -> str | None:
    """The unset variables that keep `provider` from working, or None when it can be used."""
    if provider == MUX and not (settings.mux_token_id and _secret(settings.mux_token_secret)):
        return "MUX_TOKEN_ID / MUX_TOKEN_SECRET"
    if provider == CLOUDFLARE and not (settings.cloudflare_account_id and _secret(settings.cloudflare_api_token)):
        return "CLOUDFLARE_ACCOUNT_ID / CLOUDFLARE_API_TOKEN"
    return None


async def _call(client: httpx.AsyncClient, provider: str, method: str, url: str, *, json=None,
                ok: tuple[int, ...] = (200, 201, 204)) -> dict:
    name = NAMES[provider]
    try:
        response = await client.request(method, url, json=json)
    except httpx.TimeoutException:
        log.warning("provider call timed out", extra={"provider": provider, "method": method})
        raise ProviderError(503, f"{name} did not answer in time; nothing was changed, try again.") from None
    except httpx.HTTPError as exc:
        log.warning("provider unreachable", extra={"provider": provider, "method": method,
                                                   "errorType": type(exc).__name__})
        raise ProviderError(503, f"{name} could not be reached; nothing was changed, try again.") from None
    if response.status_code not in ok:
        # the body is not quoted back: an error document may echo what we sent
        log.warning("provider refused", extra={"provider": provider, "method": method,
                                               "status": response.status_code})
        if response.status_code in (429,) or response.status_code >= 500:
            raise ProviderError(503, f"{name} is unavailable (it answered {response.status_code}); "
                                     "nothing was changed, try again.")
        raise ProviderError(502, f"{name} refused the request (it answered {response.status_code}); "
                                 "nothing was changed.")
    if response.status_code == 204 or not response.content:
        return {}
    try:
        document = response.json()
    except ValueError:
        raise ProviderError(502, f"{name} answered something that is not JSON.") from None
    return document if isinstance(document, dict) else {}


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


# ---- Mux -------------------------------------------------------------------------------------

class MuxClient:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.transport = transport

    def _client(self) -> httpx.AsyncClient:
        s = self.settings
        return httpx.AsyncClient(base_url=s.mux_api_base_url.rstrip("/"), transport=self.transport,
                                 auth=(s.mux_token_id or "", _secret(s.mux_token_secret) or ""),
                                 timeout=s.provider_timeout_seconds)

    @staticmethod
    def create_body(channel_id: str) -> dict:
        # passthrough on the live stream and on the assets it records: the webhooks map both back
        # to the channel (media-gateway webhooks/service.py)
        return {"playback_policies": ["public"], "passthrough": channel_id,
                "new_asset_settings": {"playback_policies": ["public"], "passthrough": channel_id}}

    def _stream(self, document: dict) -> ProvisionedStream:
        data = document.get("data") if isinstance(document.get("data"), dict) else {}
        stream_id, key = _text(data.get("id")), _text(data.get("stream_key"))
        if stream_id is None or key is None:
            raise ProviderError(502, "Mux answered without a live stream id or stream key.")
        ids = [p for p in data.get("playback_ids") or [] if isinstance(p, dict) and _text(p.get("id"))]
        ids.sort(key=lambda p: p.get("policy") != "public")  # a public id plays without a token
        playback_id = ids[0]["id"] if ids else None
        passphrase = _text(data.get("srt_passphrase"))
        srt_url = None
        if passphrase:
            srt_url = f"{self.settings.mux_srt_url}?" + urlencode({"streamid": key, "passphrase": passphrase})
        playback_url = (f"{self.settings.mux_playback_base_url.rstrip('/')}/{playback_id}.m3u8"
                        if playback_id else None)
        return ProvisionedStream(MUX, stream_id, key, self.settings.mux_rtmp_url, srt_url, playback_id,
                                 playback_url)

    async def create(self, channel_id: str) -> ProvisionedStream:
        async with self._client() as client:
            return self._stream(await _call(client, MUX, "POST", "/video/v1/live-streams",
                                            json=self.create_body(channel_id), ok=(200, 201)))

    async def reset_key(self, stream_id: str) -> ProvisionedStream:
        async with self._client() as client:
            return self._stream(await _call(
                client, MUX, "POST", f"/video/v1/live-streams/{quote(stream_id, safe='')}/reset-stream-key",
                ok=(200, 201)))

    async def end(self, stream_id: str) -> None:
        async with self._client() as client:
            await _call(client, MUX, "PUT", f"/video/v1/live-streams/{quote(stream_id, safe='')}/complete",
                        ok=(200, 201, 204))

    async def delete(self, stream_id: str) -> None:
        async with self._client() as client:
            await _call(client, MUX, "DELETE", f"/video/v1/live-streams/{quote(stream_id, safe='')}",
                        ok=(200, 204, 404))


# ---- Cloudflare Stream -------------------------------------------------------------------------

class CloudflareClient:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.transport = transport

    def _client(self) -> httpx.AsyncClient:
        s = self.settings
        return httpx.AsyncClient(
            base_url=s.cloudflare_api_base_url.rstrip("/"), transport=self.transport,
            timeout=s.provider_timeout_seconds,
            headers={"Authorization": f"Bearer {_secret(s.cloudflare_api_token) or ''}"})

    def _path(self, uid: str | None = None) -> str:
        path = f"/accounts/{quote(self.settings.cloudflare_account_id or '', safe='')}/stream/live_inputs"
        return path if uid is None else f"{path}/{quote(uid, safe='')}"

    @staticmethod
    def input_body(channel_id: str, *, enabled: bool | None = None) -> dict:
        # meta.channelId maps recordings (video webhooks) back to the channel; the full body on
        # every PUT so an update never depends on how Cloudflare treats omitted fields
        body: dict = {"meta": {"name": f"channel {channel_id}", "channelId": channel_id},
                      "recording": {"mode": "automatic"}}
        if enabled is not None:
            body["enabled"] = enabled
        return body

    def _input(self, document: dict) -> ProvisionedStream:
        result = document.get("result") if isinstance(document.get("result"), dict) else {}
        uid = _text(result.get("uid"))
        rtmps = result.get("rtmps") if isinstance(result.get("rtmps"), dict) else {}
        key, url = _text(rtmps.get("streamKey")), _text(rtmps.get("url"))
        if document.get("success") is False or uid is None or key is None or url is None:
            raise ProviderError(502, "Cloudflare Stream answered without a live input id or RTMPS key.")
        srt = result.get("srt") if isinstance(result.get("srt"), dict) else {}
        srt_url = None
        if _text(srt.get("url")) and _text(srt.get("streamId")) and _text(srt.get("passphrase")):
            srt_url = f"{srt['url']}?" + urlencode({"passphrase": srt["passphrase"], "streamid": srt["streamId"]})
        base = self.settings.cloudflare_playback_base_url
        playback_url = f"{base.rstrip('/')}/{uid}/manifest/video.m3u8" if base else None
        return ProvisionedStream(CLOUDFLARE, uid, key, url, srt_url, uid, playback_url)

    async def create(self, channel_id: str) -> ProvisionedStream:
        async with self._client() as client:
            return self._input(await _call(client, CLOUDFLARE, "POST", self._path(), json=self.input_body(channel_id),
                                           ok=(200, 201)))

    async def set_enabled(self, stream_id: str, channel_id: str, enabled: bool) -> None:
        async with self._client() as client:
            await _call(client, CLOUDFLARE, "PUT", self._path(stream_id),
                        json=self.input_body(channel_id, enabled=enabled), ok=(200,))

    async def delete(self, stream_id: str) -> None:
        async with self._client() as client:
            await _call(client, CLOUDFLARE, "DELETE", self._path(stream_id), ok=(200, 204, 404))


def client_for(settings: Settings, provider: str, transport: httpx.AsyncBaseTransport | None = None):
    missing = missing_settings(settings, provider)
    if missing:
        raise NotConfigured(provider, missing)
    return MuxClient(settings, transport) if provider == MUX else CloudflareClient(settings, transport)
