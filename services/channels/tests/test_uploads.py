"""POST /api/upload/banner: owner only, re-encoded, fitted within 1920x480, stored, announced."""

import io
import uuid

from PIL import Image


def png(width: int, height: int, color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


async def test_banner_upload(client, make_user, create_channel, problem, channels_app, published, eventually):
    alice, bob = make_user(), make_user()
    ch = await create_channel(alice, slug="bannered")
    url = "/api/upload/banner"

    r = await client.post(url, headers=alice.headers, data={"channelId": ch["id"]},
                          files={"file": ("banner.png", png(3000, 600), "image/png")})
    assert r.status_code == 200, r.text
    banner = r.json()["url"]
    assert banner.startswith(f"/media/banners/{ch['id']}/") and banner.endswith(".webp")
    stored = await channels_app.state.runtime.store.get(banner.removeprefix("/media/"))
    with Image.open(io.BytesIO(stored)) as img:
        assert img.format == "WEBP" and img.size == (1920, 384)  # fitted, aspect ratio kept
    assert (await client.get("/api/channels/bannered")).json()["banner"] == banner
    updated = await eventually(lambda: published("channel.updated"), message="channel.updated")
    assert updated[-1].data.banner == banner

    def upload(user=alice, channel_id=ch["id"], content=None, **kw):
        files = kw.pop("files", {"file": ("b.png", content if content is not None else png(10, 10), "image/png")})
        data = {"channelId": channel_id} if channel_id is not None else {}
        return client.post(url, headers=user.headers if user else {}, data=data, files=files)

    problem(await upload(user=None), 401)
    problem(await upload(user=bob), 403)
    problem(await upload(channel_id=str(uuid.uuid4())), 404)
    problem(await upload(channel_id="garbage"), 404)
    problem(await upload(channel_id=None), 422)
    problem(await upload(files={"other": ("b.png", png(10, 10), "image/png")}), 422)
    problem(await client.post(url, headers=alice.headers, json={"channelId": ch["id"]}), 422)
    problem(await upload(content=b"%PDF-1.7 definitely not an image"), 415)
    problem(await client.post(url, headers={**alice.headers, "content-type": "multipart/form-data"},
                              content=b"no boundary"), 422)
    problem(await upload(content=png(50, 50)[:60]), 422)  # truncated: corrupt
    problem(await upload(content=b""), 422)
    big = png(10, 10) + b"\0" * (5 * 1024 * 1024)
    problem(await upload(content=big), 413)
    # none of the refusals changed the banner
    assert (await client.get("/api/channels/bannered")).json()["banner"] == banner
