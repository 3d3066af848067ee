"""The ingest_* gauges from nginx-rtmp's /stat (against real nginx-rtmp: tests/test_real_ingest.py)."""

import httpx
from prometheus_client import REGISTRY

from media_gateway.ingest.stats import IngestStatsWorker, ingest_load, read_live_publishers

STAT = b"""<?xml version="1.0" encoding="utf-8" ?>
<rtmp><server>
<application><name>live</name><live>
<stream><name>a_src</name><bw_in>2654208</bw_in><bw_video>2500000</bw_video>
<client><id>5</id><address>203.0.113.9</address><publishing/></client><nclients>2</nclients><publishing/></stream>
<stream><name>b_src</name><bw_in>6100000</bw_in>
<client><id>9</id><address>198.51.100.7</address><publishing/></client><nclients>1</nclients><publishing/></stream>
<stream><name>waiting_src</name><bw_in>0</bw_in><nclients>1</nclients></stream>
</live></application>
<application><name>src</name><live>
<stream><name>a_src</name><bw_in>2654208</bw_in><nclients>3</nclients><publishing/></stream>
</live></application>
</server></rtmp>
"""


def test_publishers_and_bandwidth_of_the_encoders_app_only():
    load = ingest_load(STAT, "live")
    assert load.publishers == 2  # the pull still waiting for its encoder is not one
    assert load.bandwidth_in == 2654208 + 6100000  # src's copy is not counted twice


async def test_live_publishers_are_the_encoders_still_publishing(media_settings):
    """What a restarted gateway resumes simulcast for (media_gateway.simulcast.resume_simulcasts):
    the pull waiting for an encoder that left is no publisher; an unreadable /stat is no answer."""
    answers = iter([httpx.Response(200, content=STAT), httpx.Response(502)])
    transport = httpx.MockTransport(lambda request: next(answers))
    settings = media_settings.model_copy(update={"ingest_stat_url": "http://ingest.test/stat"})
    assert await read_live_publishers(settings, transport) == {"a_src", "b_src"}
    assert await read_live_publishers(settings, transport) is None
    assert await read_live_publishers(media_settings, transport) is None  # no /stat configured


async def test_the_gauges_follow_the_stat_and_say_when_it_is_unreadable(media_settings):
    answers = iter([httpx.Response(200, content=STAT), httpx.Response(502)])
    transport = httpx.MockTransport(lambda request: next(answers))
    settings = media_settings.model_copy(update={"ingest_stat_url": "http://ingest.test/stat"})
    worker = IngestStatsWorker(settings)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await worker.read_once(client)).publishers == 2
        assert REGISTRY.get_sample_value("ingest_publishers") == 2
        assert REGISTRY.get_sample_value("ingest_bandwidth_in_bits_per_second") == 8754208
        assert REGISTRY.get_sample_value("ingest_stat_up") == 1
        assert await worker.read_once(client) is None
        assert REGISTRY.get_sample_value("ingest_stat_up") == 0


async def test_the_worker_reads_until_stopped_and_not_at_all_when_off(media_settings):
    import asyncio

    reads = []

    def answer(request):
        reads.append(request.url.path)
        return httpx.Response(200, content=STAT)

    on = media_settings.model_copy(update={"ingest_stat_url": "http://ingest.test/stat",
                                           "ingest_stats_interval_seconds": 0.05})
    worker = IngestStatsWorker(on, transport=httpx.MockTransport(answer))
    task = asyncio.create_task(worker.run())
    while len(reads) < 2:
        await asyncio.sleep(0.01)
    worker.stop()
    await asyncio.wait_for(task, 2)
    assert reads[:2] == ["/stat", "/stat"]

    before = len(reads)
    off = on.model_copy(update={"ingest_stats_interval_seconds": 0})
    await asyncio.wait_for(IngestStatsWorker(off, transport=httpx.MockTransport(answer)).run(), 1)
    assert len(reads) == before  # off: returns at once, asks nothing
