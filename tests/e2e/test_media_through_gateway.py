"""Stored objects (images, thumbnails, VODs) live in the S3 store (SeaweedFS here, R2 in
production) and reach viewers through the gateway's /media/ and /vod/, which proxy to the bucket
unsigned: an upload is readable at the URL the service returned, a deleted object is a 404
problem, VODs answer Range requests, and nothing of the store (its headers, its XML errors, a
write) shows through."""

import asyncio
import io
import uuid
from types import SimpleNamespace

import pytest
from PIL import Image

from servicekit.storage import ObjectStore

from .helpers import register

pytestmark = pytest.mark.e2e


@pytest.fixture
def store(stack) -> ObjectStore:
    """The store the services write to, with the settings the stack gives them."""
    assert stack.s3 is not None, "make run / the e2e stack run SeaweedFS unless OBJECT_STORE=folder"
    env = {k.lower(): v for k, v in stack.s3.settings_env().items()}
    from pydantic import SecretStr

    return ObjectStore.from_settings(SimpleNamespace(
        **{**env, "s3_access_key_id": SecretStr(env["s3_access_key_id"]),
           "s3_secret_access_key": SecretStr(env["s3_secret_access_key"])}, media_base_url="/media"))


def _assert_nothing_of_the_store(r) -> None:
    leaked = [h for h in r.headers if h.lower().startswith("x-amz") or h.lower() == "set-cookie"]
    assert not leaked, leaked
    assert b"<Error>" not in r.content


def test_an_avatar_upload_is_served_from_the_bucket(gateway, stack, store):
    auth = register(gateway, "s3")["auth"]
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 120, 30)).save(buf, format="JPEG")
    r = gateway.post("/api/upload/avatar", files={"file": ("me.jpg", buf.getvalue(), "image/jpeg")}, headers=auth)
    assert r.status_code == 200, r.text
    url = r.json()["url"]

    served = gateway.get(url)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/webp"
    assert served.headers["cache-control"] == "public, max-age=604800, immutable"
    _assert_nothing_of_the_store(served)
    # the bytes the gateway served are the object in the bucket, not a file on the gateway's disk
    assert asyncio.run(store.get(url.removeprefix("/media/"))) == served.content
    assert not (stack.config.data_dir / "objects").exists()


def test_a_deleted_object_is_a_404_problem(gateway, store):
    key = f"thumbnails/e2e/{uuid.uuid4().hex}.jpg"
    url = asyncio.run(store.put(key, b"\xff\xd8\xff\xe0 thumb", "image/jpeg"))
    assert gateway.get(url).content == b"\xff\xd8\xff\xe0 thumb"

    asyncio.run(store.delete(key))
    gone = gateway.get(url)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    _assert_nothing_of_the_store(gone)


def test_vods_answer_range_requests_and_nothing_writes_through(gateway, store):
    session = uuid.uuid4().hex
    body = bytes(range(256)) * 64
    asyncio.run(store.put(f"vod/{session}.mp4", body, "video/mp4"))

    part = gateway.get(f"/vod/{session}.mp4", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == body[100:200]
    assert part.headers["content-type"] == "video/mp4"
    assert part.headers["access-control-allow-origin"] == "*"
    _assert_nothing_of_the_store(part)

    # the bucket is public-read only through GET; a write or a listing through the gateway is refused
    for method, path in (("PUT", f"/vod/{session}.mp4"), ("DELETE", f"/vod/{session}.mp4"),
                         ("PUT", "/media/x.webp"), ("GET", "/media/"), ("GET", "/media/?list-type=2")):
        r = gateway.request(method, path, content=b"overwrite" if method == "PUT" else None)
        assert r.status_code == 404, (method, path, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
        _assert_nothing_of_the_store(r)
    assert asyncio.run(store.get(f"vod/{session}.mp4")) == body
