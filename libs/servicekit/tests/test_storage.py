"""ObjectStore over a local folder (file:// URL), as in development and tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from servicekit.storage import ObjectStore


@pytest.fixture
def store(tmp_path) -> ObjectStore:
    settings = SimpleNamespace(object_store_url=f"file://{tmp_path / 'objects'}", media_base_url="/media/")
    return ObjectStore.from_settings(settings)


async def test_put_get_delete(store, tmp_path):
    data = b"RIFF\x00\x00\x00\x00WEBPVP8 fake"
    url = await store.put("avatars/u1/abc.webp", data, "image/webp")
    assert url == "/media/avatars/u1/abc.webp"
    on_disk = tmp_path / "objects" / "avatars" / "u1" / "abc.webp"
    assert on_disk.read_bytes() == data
    assert await store.get("avatars/u1/abc.webp") == data

    await store.put("avatars/u1/abc.webp", b"replaced", "image/webp")
    assert await store.get("avatars/u1/abc.webp") == b"replaced"

    await store.delete("avatars/u1/abc.webp")
    assert not on_disk.exists()
    with pytest.raises(FileNotFoundError):
        await store.get("avatars/u1/abc.webp")


def test_url_for_joins_base_and_key(store):
    assert store.url_for("banners/c1.webp") == "/media/banners/c1.webp"
    cdn = ObjectStore(store._store, "https://cdn.example.com/media")
    assert cdn.url_for("a/b.webp") == "https://cdn.example.com/media/a/b.webp"


def test_unknown_scheme_is_refused(tmp_path):
    settings = SimpleNamespace(object_store_url=f"ftp://{tmp_path}", media_base_url="/media")
    with pytest.raises(ValueError, match="file:// or s3://"):
        ObjectStore.from_settings(settings)
