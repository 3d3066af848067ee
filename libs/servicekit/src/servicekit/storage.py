"""Object storage for uploads behind one small interface: a local folder by default, any
S3-compatible store (AWS, Cloudflare R2, MinIO) by configuration. obstore does the talking."""

from __future__ import annotations

from pathlib import Path

import obstore
from obstore.store import LocalStore, S3Store


class ObjectStore:
    def __init__(self, store, public_base_url: str):
        self._store = store
        # the local file system keeps no per-object metadata; nginx derives the type from the name
        self._attributes = not isinstance(store, LocalStore)
        self.public_base_url = public_base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings) -> ObjectStore:
        url: str = settings.object_store_url
        if url.startswith("file://"):
            path = Path(url.removeprefix("file://")).resolve()
            path.mkdir(parents=True, exist_ok=True)
            store = LocalStore(str(path), mkdir=True)
        elif url.startswith("s3://"):
            bucket, _, prefix = url.removeprefix("s3://").partition("/")
            kwargs = {"region": settings.s3_region}
            if settings.s3_endpoint:
                kwargs["endpoint"] = settings.s3_endpoint
            if settings.s3_access_key_id and settings.s3_secret_access_key:
                kwargs["access_key_id"] = settings.s3_access_key_id.get_secret_value()
                kwargs["secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
            store = S3Store(bucket, prefix=prefix or None, **kwargs)
        else:
            raise ValueError(f"OBJECT_STORE_URL must start with file:// or s3://, got {url!r}")
        return cls(store, settings.media_base_url)

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store `data` under `key` and return the URL clients use to fetch it."""
        attributes = {"Content-Type": content_type} if self._attributes else None
        await obstore.put_async(self._store, key, data, attributes=attributes)
        return self.url_for(key)

    async def get(self, key: str) -> bytes:
        result = await obstore.get_async(self._store, key)
        return bytes(await result.bytes_async())

    async def delete(self, key: str) -> None:
        await obstore.delete_async(self._store, key)

    def url_for(self, key: str) -> str:
        return f"{self.public_base_url}/{key}"
