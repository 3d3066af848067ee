import pytest
from contracts import CATALOG, CHAT_STREAM, EVENTS_STREAM, STREAMS, EventType, UnknownEventType, subject_for
from contracts import subjects as s
from contracts.requests import REQUESTS
from contracts.subjects import is_valid_token, subject_matches, subjects_overlap

# The event catalog of EVENTS.md, written out independently of the code under test.
EVENTS_MD = {
    "user.registered": "auth",
    "user.updated": "auth",
    "user.blocked": "auth",
    "user.unblocked": "auth",
    "channel.created": "channels",
    "channel.updated": "channels",
    "channel.followed": "channels",
    "channel.unfollowed": "channels",
    "channel.stream_key_rotated": "channels",
    "channel.filters_updated": "channels",
    "channel.moderator_added": "channels",
    "channel.moderator_removed": "channels",
    "channel.user_banned": "channels",
    "channel.user_unbanned": "channels",
    "channel.destinations_updated": "channels",
    "media.ingest.connected": "media-gateway",
    "media.ingest.disconnected": "media-gateway",
    "media.ingest.errored": "media-gateway",
    "media.recording.ready": "media-gateway",
    "media.thumbnail.updated": "media-gateway",
    "media.vod.joined": "media-gateway",
    "media.simulcast.state_changed": "media-gateway",
    "stream.created": "streams",
    "stream.started": "streams",
    "stream.status_changed": "streams",
    "stream.ended": "streams",
    "stream.archived": "streams",
    "stream.viewers": "streams",
    "stream.end_requested": "streams",
    "stream.vod_requested": "streams",
    "clip.created": "streams",
    "clip.deleted": "streams",
    "subscription.created": "channels",
    "subscription.changed": "channels",
    "subscription.cancelled": "channels",
    "subscription.expired": "channels",
    "chat.message": "chat",
    "chat.deleted": "chat",
    "chat.report.created": "chat",
    "chat.presence": "chat",
}
PER_ROOM = {"chat.message", "chat.deleted", "chat.presence"}
PER_STREAM = {"stream.viewers"}
# v2: seq became optional on the wire (it is the CHAT stream sequence, known after the publish)
VERSIONS = {"chat.message": 2, "chat.deleted": 2}


def test_catalog_is_exactly_the_events_of_events_md():
    assert {t: entry.publisher for t, entry in CATALOG.items()} == EVENTS_MD
    assert {member.value for member in EventType} == set(EVENTS_MD)


@pytest.mark.parametrize("event_type", sorted(EVENTS_MD))
def test_entry_is_consistent(event_type):
    entry = CATALOG[event_type]
    assert entry.type == event_type
    version = VERSIONS.get(event_type, 1)
    assert entry.version == version
    assert entry.dataschema == f"urn:streamplatform:event:{event_type}:v{version}"
    assert entry.description.endswith(".")
    if event_type in PER_ROOM:
        assert entry.subject == f"{event_type}.{{channelId}}"
        assert entry.parameters == ("channelId",)
        assert entry.wildcard_subject == f"{event_type}.*"
    elif event_type in PER_STREAM:
        assert entry.subject == f"{event_type}.{{streamId}}"
        assert entry.parameters == ("streamId",)
        assert entry.wildcard_subject == f"{event_type}.*"
    else:
        assert entry.subject == event_type
        assert entry.parameters == ()


def test_subject_constants_are_the_catalog_subjects():
    constants = {value for name, value in vars(s).items() if name.isupper() and isinstance(value, str)}
    catalog_subjects = {entry.subject for entry in CATALOG.values()}
    wildcards = {entry.wildcard_subject for entry in CATALOG.values() if entry.parameters}
    requests = {request.subject for request in REQUESTS}
    # edge-to-edge room chatter (typing, joins): core NATS, no catalog event by design
    ephemeral = {s.CHAT_ROOM_TEMPLATE, s.CHAT_ROOM_ALL}
    # the chat API's answers to its own edges, and their KV bucket: named for contracts.access
    chat_internal = {s.CHAT_API_HISTORY, s.CHAT_API_STATE, s.CHAT_STATE_BUCKET}
    # drops between the media gateway's ingest nodes: media-gateway-internal, named for contracts.access
    media_internal = {s.INGEST_NODE_DROP_TEMPLATE, s.INGEST_NODE_DROP_ALL}
    assert constants == catalog_subjects | wildcards | requests | ephemeral | chat_internal | media_internal


def test_subject_for_fixed_subjects():
    assert subject_for("user.registered") == "user.registered"
    assert subject_for(EventType.CHANNEL_STREAM_KEY_ROTATED) == "channel.stream_key_rotated"


@pytest.mark.parametrize("event_type", sorted(PER_ROOM))
def test_subject_for_templates(event_type):
    assert subject_for(event_type, channelId="c_01H9") == f"{event_type}.c_01H9"


def test_subject_for_wrong_parameters():
    with pytest.raises(TypeError, match="channelId"):
        subject_for("chat.message")
    with pytest.raises(TypeError, match="channel_id"):
        subject_for("chat.message", channel_id="c1")
    with pytest.raises(TypeError, match="no parameters"):
        subject_for("user.registered", channelId="c1")


@pytest.mark.parametrize("bad", ["", "a.b", "*", ">", "c 1", "c\t1", "c1.>"])
def test_subject_for_refuses_values_that_are_not_one_token(bad):
    with pytest.raises(ValueError):
        subject_for("chat.message", channelId=bad)


def test_subject_for_unknown_type():
    with pytest.raises(UnknownEventType):
        subject_for("chat.messages", channelId="c1")


def test_tokens():
    assert is_valid_token("01HZX-abc_9")
    assert not is_valid_token("a.b")


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("user.>", "user.registered", True),
        ("user.>", "user", False),
        ("chat.message.*", "chat.message.c1", True),
        ("chat.message.*", "chat.message.c1.x", False),
        ("chat.message.*", "chat.message", False),
        ("chat.report.>", "chat.report.created", True),
        ("channel.>", "channels.ingest.authorize", False),
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
    ],
)
def test_subject_matches(pattern, subject, expected):
    assert subject_matches(pattern, subject) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("chat.>", "chat.message.*", True),
        ("chat.report.>", "chat.message.*", False),
        ("a.*", "*.b", True),
        ("a.*", "a.b.c", False),
        ("a.>", "a", False),
        ("user.>", "channel.>", False),
    ],
)
def test_subjects_overlap(a, b, expected):
    assert subjects_overlap(a, b) is expected
    assert subjects_overlap(b, a) is expected


@pytest.mark.parametrize("event_type", sorted(EVENTS_MD))
def test_each_event_is_stored_by_its_stream_and_no_other(event_type):
    entry = CATALOG[event_type]
    subject = entry.subject_for(**{name: "c1" for name in entry.parameters})
    storing = [stream.name for stream in STREAMS if stream.covers(subject)]
    assert storing == ([entry.stream.name] if entry.stream else [])


def test_presence_is_core_nats_and_chat_events_are_in_the_chat_stream():
    assert CATALOG["chat.presence"].stream is None
    assert CATALOG["chat.message"].stream is CHAT_STREAM
    assert CATALOG["chat.deleted"].stream is CHAT_STREAM
    assert CATALOG["chat.report.created"].stream is EVENTS_STREAM


def test_request_subjects_are_not_captured_by_a_stream():
    for request in REQUESTS:
        assert not any(stream.covers(request.subject) for stream in STREAMS), request.subject


def test_streams_do_not_overlap():
    for index, first in enumerate(STREAMS):
        for second in STREAMS[index + 1 :]:
            clashes = [(a, b) for a in first.subjects for b in second.subjects if subjects_overlap(a, b)]
            assert not clashes, f"{first.name} and {second.name} overlap: {clashes}"
    assert len({stream.name for stream in STREAMS}) == len(STREAMS)


def test_stream_settings():
    for stream in STREAMS:
        assert stream.storage == "file"
        assert 0 < stream.duplicate_window_seconds <= stream.max_age_seconds
    # The outbox relay republishes unsent rows after a crash and restart; the window must cover that.
    assert EVENTS_STREAM.duplicate_window_seconds >= 3600


def test_viewer_counts_keep_only_the_latest_per_stream_outside_events():
    """At 10k live streams a count a second each would fill the 7-day EVENTS stream (and every
    consumer's inbox) within the hour: counts live in VIEWERS, one message per stream."""
    from contracts.subjects import VIEWERS_STREAM

    entry = CATALOG["stream.viewers"]
    assert entry.stream is VIEWERS_STREAM
    assert VIEWERS_STREAM.max_msgs_per_subject == 1
    subject = subject_for("stream.viewers", streamId="s1")
    assert subject == "stream.viewers.s1"
    assert VIEWERS_STREAM.covers(subject) and not EVENTS_STREAM.covers(subject)
    assert not EVENTS_STREAM.covers("stream.viewers")
    # every other stream.* event is still a domain event in EVENTS
    for event_type, spec_ in CATALOG.items():
        if event_type.startswith("stream.") and event_type != "stream.viewers":
            assert spec_.stream is EVENTS_STREAM and EVENTS_STREAM.covers(spec_.subject), event_type
