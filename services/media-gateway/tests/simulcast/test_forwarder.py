"""Simulcast forwarder logic (no servers): the ffmpeg command copies without re-encoding, and
ffmpeg's messages lose the destination's key before they are logged or reported. The forwarding
itself runs against real nginx-rtmp servers in tests/e2e/test_simulcast_through_gateway.py."""

from contracts.requests import SimulcastTarget
from media_gateway.simulcast.service import ffmpeg_argv, mask

TARGET = SimulcastTarget(id="d1", url="rtmp://dest.example:1935/app/sk_live_SECRET123", key_suffix="T123")


def test_the_source_is_copied_not_reencoded():
    argv = ffmpeg_argv("ffmpeg", "rtmp://127.0.0.1:1935/src/s1_src", TARGET.url.get_secret_value())
    assert argv[argv.index("-i") + 1] == "rtmp://127.0.0.1:1935/src/s1_src"
    assert argv[argv.index("-c") + 1] == "copy"
    assert not any(a.startswith(("libx264", "-c:v", "-vf", "scale")) for a in argv)
    assert argv[-1] == "rtmp://dest.example:1935/app/sk_live_SECRET123"
    assert argv[argv.index("-f", argv.index("-c")) + 1] == "flv"


def test_ffmpeg_messages_are_masked():
    message = ("Error opening output rtmp://dest.example:1935/app/sk_live_SECRET123: Connection refused | "
               "stream sk_live_SECRET123 refused")
    masked = mask(message, TARGET)
    assert "SECRET123" not in masked
    assert "rtmp://dest.example:1935/app/****: Connection refused" in masked
    assert "SECRET123" not in repr(TARGET)


async def test_closing_does_not_wait_out_a_lookup_nobody_answers(media_settings, nats_url):
    """A session's destinations lookup retries for seconds when channels does not answer, holding
    the session's lock; closing the node (every media gateway test's teardown too) cancels it
    rather than waiting for it (it took 3.5 s)."""
    import asyncio
    import time

    import nats
    from media_gateway.simulcast.service import Simulcasts

    nc = await nats.connect(nats_url)
    try:
        simulcasts = Simulcasts(media_settings.model_copy(update={"simulcast_enabled": True}))
        simulcasts.bind(lambda: nc, lambda: None)
        simulcasts.start("s1", "chan-1")
        await asyncio.sleep(0.2)  # the lookup is in flight (no responder: it will time out and retry)
        started = time.monotonic()
        await simulcasts.close()
        assert time.monotonic() - started < 0.5
        assert not simulcasts.forwarders("s1")
    finally:
        await nc.close()


async def test_stopping_a_session_does_not_wait_out_its_lookup(media_settings, nats_url):
    """on_publish_done stops the session's simulcast; nginx waits for that answer."""
    import asyncio
    import time

    import nats
    from media_gateway.simulcast.service import Simulcasts

    nc = await nats.connect(nats_url)
    try:
        simulcasts = Simulcasts(media_settings.model_copy(update={"simulcast_enabled": True}))
        simulcasts.bind(lambda: nc, lambda: None)
        simulcasts.start("s1", "chan-1")
        simulcasts.start("s2", "chan-2")
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await simulcasts.stop("s1")
        assert time.monotonic() - started < 0.5
        assert list(simulcasts._syncs) == ["s2"]  # the other session's lookup goes on
        await simulcasts.close()
    finally:
        await nc.close()


async def test_a_session_that_ended_before_its_forwarders_start_gets_none(media_settings, nats_url):
    """After a restart the open sessions are read, then each is started; one that ends in between
    (its release, which stops forwarders, already run) must get no forwarder nobody would stop."""
    import asyncio
    from datetime import UTC, datetime

    import nats
    from contracts.requests import SimulcastDestinationsReply
    from contracts.subjects import CHANNELS_SIMULCAST_DESTINATIONS
    from devstack.ports import free_port
    from servicekit.db import Database

    from media_gateway.ingest.models import IngestSession
    from media_gateway.simulcast.service import Simulcasts

    target = SimulcastTarget(id="d1", url=f"rtmp://127.0.0.1:{free_port()}/app/key_1234", key_suffix="1234")
    asked = asyncio.Queue()

    async def answer(msg):
        await msg.respond(SimulcastDestinationsReply(destinations=[target]).to_json_bytes())
        asked.put_nowait(msg)

    nc = await nats.connect(nats_url)
    db = Database(media_settings.database_url, pool_size=2)
    simulcasts = Simulcasts(media_settings.model_copy(update={"simulcast_enabled": True}))
    simulcasts.bind(lambda: nc, lambda: db)
    try:
        await nc.subscribe(CHANNELS_SIMULCAST_DESTINATIONS, cb=answer)
        async with db.session() as session:
            for session_id, ended in (("ended", datetime.now(UTC)), ("open", None)):
                session.add(IngestSession(id=session_id, channel_id=f"chan-{session_id}", node="ingest-0", app="live",
                                          client_id="1", key_digest="x", relay_name=f"{session_id}_src",
                                          ended_at=ended))
            await session.commit()

        for session_id in ("ended", "open"):
            simulcasts.start(session_id, f"chan-{session_id}")
            await asyncio.wait_for(asked.get(), 5)
            while simulcasts._syncs.get(session_id):
                await asyncio.sleep(0.01)
        assert simulcasts.forwarders("ended") == {} and "ended" not in simulcasts._channels
        assert list(simulcasts.forwarders("open")) == ["d1"]  # the same lookup forwards an open one
    finally:
        await simulcasts.close()
        await db.dispose()
        await nc.close()
