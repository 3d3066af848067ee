"""Replaced banners and channel avatars leave the object store a grace period after no channel
shows them; images a channel shows from another owner's prefix become its own copies first
(issue 14, item 10)."""

import asyncio
import io
import uuid

from channels_service.channels import media
from PIL import Image
from servicekit.retention import RetentionJob, Sweep


def png(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 10), colour).save(out, format="PNG")
    return out.getvalue()


async def test_replaced_banners_go_after_the_grace_and_foreign_images_are_adopted_first(
        client, make_user, create_channel, channels_app, channels_settings, sql, published, eventually):
    runtime = channels_app.state.runtime
    store = runtime.store
    alice, bob, carol = make_user(), make_user(), make_user()
    ch = await create_channel(alice, slug="swept")

    async def banner(colour) -> str:
        r = await client.post("/api/upload/banner", headers=alice.headers, data={"channelId": ch["id"]},
                              files={"file": ("b.png", png(colour), "image/png")})
        assert r.status_code == 200, r.text
        return store.key_of(r.json()["url"])

    replaced, current = await banner((255, 0, 0)), await banner((0, 255, 0))
    stray = f"channel-avatars/{ch['id']}/0123456789abcdef0123.webp"  # its transaction failed
    await store.put(stray, b"RIFF....WEBP", "image/webp")
    # rows from before channels copied: avatars that are auth's objects, one of them already gone
    legacy, broken = await create_channel(bob, slug="legacy"), await create_channel(carol, slug="broken")
    owners_avatar = f"avatars/{uuid.uuid4()}/abcdefabcdefabcdefab.webp"
    await store.put(owners_avatar, b"RIFF..OWNER", "image/webp")
    await sql("UPDATE channels SET avatar = :url WHERE id = :id", url=store.url_for(owners_avatar), id=legacy["id"])
    await sql("UPDATE channels SET avatar = :url WHERE id = :id",
              url=store.url_for(f"avatars/{uuid.uuid4()}/gone.webp"), id=broken["id"])

    grace = 0.3
    settings = channels_settings.model_copy(update={"unreferenced_uploads_grace_days": grace / 86400})
    job = RetentionJob(runtime.db, [], sweeps=[
        Sweep("channel_images_adopted", lambda: media.adopt_foreign_images(lambda: runtime.db, lambda: store)),
        media.image_sweep(settings, runtime).sweep()])

    async def stored() -> set[str]:
        return {key for prefix in ("banners", "channel-avatars") async for chunk in store.list(prefix)
                for key, _ in chunk}

    await asyncio.sleep(grace + 0.05)
    assert await job.run_once() == {"channel_images_adopted": 2, "channel_images": 0}  # the grace starts now
    adopted = f"channel-avatars/{legacy['id']}/abcdefabcdefabcdefab.webp"
    assert (await client.get("/api/channels/legacy")).json()["avatar"] == store.url_for(adopted)
    assert await store.get(adopted) == b"RIFF..OWNER"
    assert (await client.get("/api/channels/broken")).json()["avatar"] is None
    async def legacy_updates():
        return [e for e in await published("channel.updated") if e.data.slug == "legacy"]

    updated = await eventually(legacy_updates, message="channel.updated of the adopted avatar")
    assert updated[-1].data.avatar == store.url_for(adopted)
    assert await stored() == {replaced, current, stray, adopted}

    await sql("UPDATE unreferenced_objects SET seen_at = now() - interval '1 hour'")
    assert await job.run_once() == {"channel_images_adopted": 0, "channel_images": 2}
    assert await stored() == {current, adopted}
    assert (await client.get("/api/channels/swept")).json()["banner"] == store.url_for(current)
