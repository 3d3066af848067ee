"""The durable consumers the services run are the ones contracts.consumers declares (and so the
AsyncAPI document's `receive` operations): same names, same event types, same streams."""

from __future__ import annotations

from contracts.consumers import CONSUMERS


def _running() -> dict[str, tuple[str, str, frozenset[str]]]:
    """(service, stream, event types) by durable name, read from the services' own code."""
    from channels_service.consumers import consumers as channels_consumers
    from chat_service.config import Settings as ChatSettings
    from chat_service.consumers import consumers as chat_consumers
    from chat_service.messages.service import PERSISTER
    from contracts.catalog import EventType as E
    from contracts.subjects import CHAT_STREAM, EVENTS_STREAM
    from media_gateway import main as media_gateway
    from streams_service.config import Settings as StreamsSettings
    from streams_service.consumers import consumers as streams_consumers

    found = {}
    for service, workers in (("channels", channels_consumers()), ("streams", streams_consumers(StreamsSettings())),
                             ("chat", chat_consumers(ChatSettings()))):
        for worker in workers:
            found[worker.name] = (service, worker.stream, frozenset(worker.subjects))
    # the persister reads the whole CHAT stream; the media gateway's two are built in its main
    found[PERSISTER] = ("chat", CHAT_STREAM.name, frozenset({E.CHAT_MESSAGE, E.CHAT_DELETED}))
    for name, subjects in media_gateway.DURABLE_CONSUMERS.items():
        found[name] = ("media-gateway", EVENTS_STREAM.name, frozenset(subjects))
    return found


def test_the_services_run_exactly_the_declared_consumers():
    declared = {c.name: (c.service, c.stream.name, frozenset(c.events)) for c in CONSUMERS}
    assert _running() == declared
