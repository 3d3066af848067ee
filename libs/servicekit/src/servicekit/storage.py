"""Object storage for uploads and VODs behind one small interface: a local folder, or any
S3-compatible store (AWS S3, Cloudflare R2, SeaweedFS, MinIO) by configuration. obstore does the
talking (SigV4, retries, multipart uploads of large files)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
from obstore.store import LocalStore, S3Store

if TYPE_CHECKING:  # obstore's option dicts exist in its stubs only
    from obstore.store import ClientConfig, RetryConfig


class ObjectStoreUnavailable(RuntimeError):
    """The configured store cannot be used (missing bucket, refused keys, unreachable endpoint).
    Its message is a sentence for the operator; it never carries a key."""


class ObjectStore:
    def __init__(self, store, public_base_url: str, *, describe: str = "the object store"):
        self._store = store
        # the local file system keeps no per-object metadata; nginx derives the type from the name
        self._attributes = not isinstance(store, LocalStore)
        self.public_base_url = public_base_url.rstrip("/")
        self.describe = describe

    @classmethod
    def from_settings(cls, settings) -> ObjectStore:
        url: str = settings.object_store_url
        if url.startswith("file://"):
            path = Path(url.removeprefix("file://")).resolve()
            path.mkdir(parents=True, exist_ok=True)
            return cls(LocalStore(str(path), mkdir=True), settings.media_base_url, describe=f"the folder {path}")
        if url.startswith("s3://"):
            bucket, _, prefix = url.removeprefix("s3://").partition("/")
            if not bucket:
                raise ValueError(f"OBJECT_STORE_URL names no bucket: {url!r}")
            kwargs: dict = {"region": settings.s3_region}
            endpoint = settings.s3_endpoint
            if endpoint:
                kwargs["endpoint"] = endpoint
            if settings.s3_access_key_id and settings.s3_secret_access_key:
                kwargs["access_key_id"] = settings.s3_access_key_id.get_secret_value()
                kwargs["secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
            # a local SeaweedFS/MinIO speaks plain HTTP; R2 and AWS never do
            client_options: ClientConfig = {"connect_timeout": "5s", "timeout": "120s",
                              "allow_http": bool(endpoint and endpoint.startswith("http://"))}
            # the default (10 retries over 3 minutes) would hold a start-up or an upload request
            # for minutes behind an unreachable store; a few quick retries ride out a blip
            retry: RetryConfig = {"max_retries": 3, "retry_timeout": timedelta(seconds=20),
                     "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2),
                                 "base": 2}}
            store = S3Store(bucket, prefix=prefix.strip("/") or None, client_options=client_options,
                            retry_config=retry, **kwargs)
            where = f"bucket {bucket!r}" + (f" at {endpoint}" if endpoint else "")
            return cls(store, settings.media_base_url, describe=where)
        raise ValueError(f"OBJECT_STORE_URL must start with file:// or s3://, got {url!r}")

    async def check(self) -> None:
        """Fail at start-up, in one sentence, when the store cannot be used: a missing bucket or
        refused keys would otherwise surface as 5xx on the first upload, hours later."""
        if not self._attributes:
            return
        try:
            stream = obstore.list(self._store, chunk_size=1)
            await anext(aiter(stream), None)
        except Exception as exc:  # noqa: BLE001  obstore raises generic errors; the text says which
            raise ObjectStoreUnavailable(f"{self.describe}: {_reason(str(exc))}") from None

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store `data` under `key` and return the URL clients use to fetch it."""
        attributes = {"Content-Type": content_type} if self._attributes else None
        await obstore.put_async(self._store, key, data, attributes=attributes)
        return self.url_for(key)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store a (large) file under `key`; obstore streams it, in parts when it is big."""
        attributes = {"Content-Type": content_type} if self._attributes else None
        await obstore.put_async(self._store, key, Path(path), attributes=attributes)

    async def get(self, key: str) -> bytes:
        result = await obstore.get_async(self._store, key)
        return bytes(await result.bytes_async())

    async def get_file(self, key: str, path: Path) -> None:
        """Copy an object into a local file a chunk at a time (a VOD need not fit in memory). A
        missing object raises FileNotFoundError."""
        result = await obstore.get_async(self._store, key)
        out = await asyncio.to_thread(Path(path).open, "wb")
        try:
            async for chunk in result.stream():
                await asyncio.to_thread(out.write, chunk)
        finally:
            await asyncio.to_thread(out.close)

    async def delete(self, key: str) -> None:
        await obstore.delete_async(self._store, key)

    async def copy(self, source: str, target: str) -> str:
        """Copy an object inside the store (its content type with it); returns the copy's URL.
        A missing source raises FileNotFoundError."""
        await obstore.copy_async(self._store, source, target)
        return self.url_for(target)

    async def list(self, prefix: str, chunk_size: int = 1000) -> AsyncIterator[list[tuple[str, datetime]]]:
        """The objects under `prefix` as (key, last modified), a chunk at a time."""
        async for chunk in obstore.list(self._store, prefix.rstrip("/") + "/", chunk_size=chunk_size):
            yield [(meta["path"], meta["last_modified"]) for meta in chunk]

    def url_for(self, key: str) -> str:
        return f"{self.public_base_url}/{key}"

    def key_of(self, url: str) -> str | None:
        """The key a URL of url_for names, or None when it is not one of this store's URLs."""
        base = self.public_base_url + "/"
        return url.removeprefix(base) if url.startswith(base) and len(url) > len(base) else None


# S3 error codes (in the XML body obstore quotes) -> what the operator should do
_REASONS = {
    "NoSuchBucket": "the bucket does not exist; create it (or fix OBJECT_STORE_URL)",
    "InvalidAccessKeyId": "the store does not know S3_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "S3_SECRET_ACCESS_KEY does not match S3_ACCESS_KEY_ID",
    "AccessDenied": "the keys may not list the bucket (they need read, write and list on it)",
}


def _reason(text: str) -> str:
    for code, reason in _REASONS.items():
        if code in text:
            return reason
    if "error sending request" in text or "Connection refused" in text or "dns error" in text:
        return "the endpoint does not answer (check S3_ENDPOINT)"
    return "the store refused a listing: " + text.splitlines()[0][:300]
