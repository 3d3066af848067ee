"""The NATS permission table (contracts.access) against the contracts it grants rights over:
each event is publishable by its own service only, a request is heard by its responder only and
asked by its requesters only, and nobody reads another user's replies."""

from __future__ import annotations

import pytest
from contracts.access import USERS, inbox_prefix, permissions
from contracts.catalog import CATALOG
from contracts.requests import REQUESTS
from contracts.subjects import CHANNELS_INGEST_AUTHORIZE, INGEST_NODE_DROP_TEMPLATE, STREAMS, subject_matches


def _allowed(patterns, subject: str) -> bool:
    return any(subject_matches(p, subject) or p == subject for p in patterns)


def _sample(subject: str) -> str:
    """A concrete subject a (template or wildcard) subject stands for."""
    return subject.replace("{channelId}", "c1").replace("{streamId}", "s1").replace("*", "x1")


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_an_event_is_publishable_by_its_publisher_and_by_no_other_service(event_type):
    spec = CATALOG[event_type]
    subject = _sample(spec.subject)
    publishers = {user for user in USERS if _allowed(permissions(user).publish, subject)}
    assert publishers, f"no NATS user may publish {event_type}"
    assert {USERS[user].service for user in publishers} == {spec.publisher}, publishers


@pytest.mark.parametrize("request_spec", REQUESTS, ids=lambda r: r.subject)
def test_a_request_is_heard_by_its_responder_and_asked_by_its_requesters_only(request_spec):
    requesters = {name.strip() for name in request_spec.requester.split(",")}
    hear = {user for user in USERS if _allowed(permissions(user).subscribe, request_spec.subject)}
    ask = {user for user in USERS if _allowed(permissions(user).publish, request_spec.subject)}
    assert hear == {request_spec.responder}
    assert ask == requesters
    # the responder answers through allow_responses, not a right to publish to inboxes
    assert permissions(request_spec.responder).allow_responses


def test_stream_keys_reach_channels_alone():
    assert [u for u in USERS if _allowed(permissions(u).subscribe, CHANNELS_INGEST_AUTHORIZE)] == ["channels"]
    assert [u for u in USERS if _allowed(permissions(u).publish, CHANNELS_INGEST_AUTHORIZE)] == ["media-gateway"]


def test_drops_between_ingest_nodes_are_the_media_gateways_alone_and_stored_nowhere():
    """A drop goes from any media gateway replica to the one on the session's node (core NATS
    request/reply: a stream capturing it would answer with a publish ack instead)."""
    subject = INGEST_NODE_DROP_TEMPLATE.format(node="ingest-1")
    assert [u for u in USERS if _allowed(permissions(u).subscribe, subject)] == ["media-gateway"]
    assert [u for u in USERS if _allowed(permissions(u).publish, subject)] == ["media-gateway"]
    assert not any(stream.covers(subject) for stream in STREAMS)


@pytest.mark.parametrize("user", list(USERS))
def test_a_user_reads_only_its_own_replies_and_publishes_to_no_inbox(user):
    p = permissions(user)
    for other in USERS:
        reply = f"{inbox_prefix(other)}.AbCdEf.1"
        assert _allowed(p.subscribe, reply) == (other == user), other
        assert not _allowed(p.publish, reply)
    assert not _allowed(p.subscribe, "_INBOX.AbCdEf.1")  # the default prefix: somebody else's
    assert ">" not in p.publish and ">" not in p.subscribe


@pytest.mark.parametrize("user", list(USERS))
def test_no_user_may_delete_streams_or_consumers_of_streams_it_does_not_use(user):
    p = permissions(user)
    assert not _allowed(p.publish, "$JS.API.STREAM.DELETE.EVENTS")
    assert not _allowed(p.publish, "$JS.API.STREAM.PURGE.EVENTS")
    uses = {s.name for s in USERS[user].consumes}
    for stream in ("EVENTS", "CHAT", "VIEWERS"):
        assert _allowed(p.publish, f"$JS.API.CONSUMER.DELETE.{stream}.x") == (stream in uses), stream


def test_only_channels_may_create_or_update_streams_and_buckets():
    """A stream's subjects decide what it captures (stream keys included): one user configures them."""
    for name in ("EVENTS", "CHAT", "VIEWERS", "KV_chat-state", "ANY"):
        for action in ("CREATE", "UPDATE"):
            subject = f"$JS.API.STREAM.{action}.{name}"
            allowed = [u for u in USERS if _allowed(permissions(u).publish, subject)]
            assert allowed == (["channels"] if name != "ANY" else []), subject
