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
