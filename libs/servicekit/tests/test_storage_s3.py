"""ObjectStore against a real S3 server (SeaweedFS's S3 gateway): what production does on R2."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from servicekit.settings import ServiceSettings
from servicekit.storage import ObjectStore, ObjectStoreUnavailable


def settings_for(env: dict[str, str], **overrides) -> ServiceSettings:
    values = {k.lower(): v for k, v in env.items()} | {"media_base_url": "/media"} | overrides
    return ServiceSettings(**values)


@pytest.fixture
def env(object_store_env):
    return object_store_env


async def test_put_get_delete_and_anonymous_read(env, seaweedfs):
    store = ObjectStore.from_settings(settings_for(env))
    await store.check()
    prefix = env["OBJECT_STORE_URL"].split("/", 3)[3]
    data = b"\xff\xd8\xff\xe0 fake jpeg"
    url = await store.put("avatars/u1/abc.jpg", data, "image/jpeg")
    assert url == "/media/avatars/u1/abc.jpg"
    assert await store.get("avatars/u1/abc.jpg") == data

    # what the gateway does: an unsigned GET of the object in the bucket, with its type kept
    public = httpx.get(f"{seaweedfs.public_url}/{prefix}/avatars/u1/abc.jpg")
    assert public.status_code == 200 and public.content == data
    assert public.headers["content-type"] == "image/jpeg"
    # anonymous clients read objects but may not list the bucket or write to it
    assert httpx.get(f"{seaweedfs.public_url}/?list-type=2").status_code == 403
    assert httpx.put(f"{seaweedfs.public_url}/{prefix}/x.txt", content=b"x").status_code == 403

    await store.delete("avatars/u1/abc.jpg")
    with pytest.raises(FileNotFoundError):
        await store.get("avatars/u1/abc.jpg")
    assert httpx.get(f"{seaweedfs.public_url}/{prefix}/avatars/u1/abc.jpg").status_code == 404


async def test_put_file_streams_a_large_file(env, tmp_path):
    store = ObjectStore.from_settings(settings_for(env))
    big = tmp_path / "vod.mp4"
    payload = bytes(range(256)) * (12 * 1024 * 4 + 7)  # ~12.6 MB: several multipart parts
    big.write_bytes(payload)
    await store.put_file("vod/s1.mp4", big, "video/mp4")
    assert await store.get("vod/s1.mp4") == payload


async def test_missing_bucket_is_a_sentence_at_start(env):
    store = ObjectStore.from_settings(settings_for(env, object_store_url="s3://no-such-bucket/x"))
    with pytest.raises(ObjectStoreUnavailable) as failure:
        await store.check()
    message = str(failure.value)
    assert message == "bucket 'no-such-bucket' at " + env["S3_ENDPOINT"] + \
        ": the bucket does not exist; create it (or fix OBJECT_STORE_URL)"


async def test_wrong_secret_is_a_sentence_without_the_key(env):
    store = ObjectStore.from_settings(settings_for(env, s3_secret_access_key=SecretStr("not-the-secret")))
    with pytest.raises(ObjectStoreUnavailable) as failure:
        await store.check()
    assert "S3_SECRET_ACCESS_KEY does not match" in str(failure.value)
    assert "not-the-secret" not in str(failure.value) and env["S3_ACCESS_KEY_ID"] not in str(failure.value)


async def test_unreachable_endpoint_is_a_sentence(env):
    from devstack.ports import free_port

    store = ObjectStore.from_settings(settings_for(env, s3_endpoint=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(ObjectStoreUnavailable, match="the endpoint does not answer"):
        await store.check()


def test_serve_with_a_missing_bucket_stops_with_one_sentence(env, capsys):
    from fastapi import FastAPI

    from servicekit import cli
    from servicekit.app import ServiceRuntime

    def app_factory(settings):
        app = FastAPI()
        app.state.runtime = ServiceRuntime(settings, uses_store=True)
        return app

    settings = settings_for(env, object_store_url="s3://no-such-bucket", service_name="uploads")
    code = cli.main(settings_factory=lambda: settings, app_factory=app_factory, migrations_dir=None,
                    argv=["serve"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == ("uploads cannot start: object store: bucket 'no-such-bucket' at " + env["S3_ENDPOINT"]
                   + ": the bucket does not exist; create it (or fix OBJECT_STORE_URL)\n")
