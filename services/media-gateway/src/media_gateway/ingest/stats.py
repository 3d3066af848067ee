"""The ingest's load as Prometheus gauges, read from nginx-rtmp's /stat.

nginx-rtmp has no metrics endpoint of its own; its statistics document (rtmp_stat) has what an
operator watches on an ingest: how many encoders are live and the bandwidth they bring in.
"""

from __future__ import annotations

import asyncio
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from prometheus_client import Gauge

from servicekit.periodic import every

from media_gateway.config import Settings

log = logging.getLogger("media_gateway.ingest.stats")

INGEST_PUBLISHERS = Gauge("ingest_publishers", "Encoders publishing to the ingest now (nginx-rtmp /stat)")
INGEST_BANDWIDTH_IN = Gauge("ingest_bandwidth_in_bits_per_second",
                            "Bandwidth the encoders bring into the ingest (nginx-rtmp /stat, the live app)")
INGEST_STAT_UP = Gauge("ingest_stat_up", "1 when the last read of nginx-rtmp's /stat succeeded")


@dataclass(frozen=True)
class IngestLoad:
    publishers: int
    bandwidth_in: int  # bits per second


def app_streams(stat_xml: bytes, app: str) -> Iterator[ET.Element]:
    """The `<stream>` elements of one application in nginx-rtmp's statistics document."""
    for application in ET.fromstring(stat_xml).iter("application"):
        if application.findtext("name") == app:
            yield from application.iter("stream")


def live_publishers(stat_xml: bytes, app: str) -> set[str]:
    """The names of the streams of `app` that have a publisher."""
    return {stream.findtext("name") or "" for stream in app_streams(stat_xml, app)
            if stream.find("publishing") is not None}


async def read_live_publishers(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> set[str] | None:
    """The streams encoders publish to the ingest now; None when nginx-rtmp's /stat is unknown or
    unreadable."""
    if settings.ingest_stat is None:
        return None
    try:
        async with httpx.AsyncClient(timeout=2.0, transport=transport) as client:
            r = await client.get(settings.ingest_stat)
            r.raise_for_status()
            return live_publishers(r.content, settings.ingest_app)
    except (httpx.HTTPError, ET.ParseError) as exc:
        log.warning("ingest stat unreadable", extra={"error": repr(exc)})
        return None


def ingest_load(stat_xml: bytes, app: str) -> IngestLoad:
    """Publishers and incoming bandwidth of the encoders' application (src/abr are internal copies)."""
    publishers = bandwidth = 0
    for stream in app_streams(stat_xml, app):
        if stream.find("publishing") is not None:
            publishers += 1
            bandwidth += int(stream.findtext("bw_in") or 0)
    return IngestLoad(publishers, bandwidth)


class IngestStatsWorker:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.transport = transport
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def read_once(self, client: httpx.AsyncClient) -> IngestLoad | None:
        try:
            r = await client.get(self.settings.ingest_stat)
            r.raise_for_status()
            load = ingest_load(r.content, self.settings.ingest_app)
        except (httpx.HTTPError, ET.ParseError, ValueError) as exc:
            INGEST_STAT_UP.set(0)
            log.debug("ingest stat unreadable", extra={"error": repr(exc)})
            return None
        INGEST_STAT_UP.set(1)
        INGEST_PUBLISHERS.set(load.publishers)
        INGEST_BANDWIDTH_IN.set(load.bandwidth_in)
        return load

    async def run(self) -> None:
        if self.settings.ingest_stat is None or not self.settings.ingest_stats_interval_seconds:
            return
        async with httpx.AsyncClient(timeout=2.0, transport=self.transport) as client:
            await every(self.settings.ingest_stats_interval_seconds, lambda: self.read_once(client),
                        self._stop)
