"""The dev stack's NATS and Valkey refuse clients without credentials, and a service's NATS user
may publish and subscribe only to what contracts.access gives it (issue 14 item 13): above all,
only channels hears `channels.ingest.authorize` (stream keys travel on it) and only the media
gateway asks it.

Its own servers, not the session's: the refusals provoked here would fail the session's check
that no service was refused anything (devstack.pytest_plugin `nats_url`)."""

from __future__ import annotations

import asyncio

import nats
import pytest
import redis
from contracts import CATALOG
from contracts.access import USERS, inbox_prefix
from contracts.requests import INGEST_AUTHORIZE, IngestAuthorizeReply, IngestAuthorizeRequest
from devstack.ports import free_port
from devstack.processes import Supervisor
from devstack.servers import NatsServer, Valkey
from contracts.subjects import BUCKETS, EVENTS_STREAM, STREAMS
from nats.js.api import StreamConfig
from servicekit.messaging import ask, ensure_streams, split_credentials


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("access")
    sup = Supervisor(root / "logs")
    try:
        yield (NatsServer(free_port(), free_port(), root / "nats").start(sup, "access-nats"),
               Valkey(free_port(), root / "valkey", durable=False).start(sup, "access-valkey"))
    finally:
        sup.stop_all()


class Client:
    """A connection as one user, as servicekit.messaging.connect makes it, that keeps the errors
    the server sends (a refused publish or subscription arrives as one, asynchronously)."""

    def __init__(self):
        self.errors: list[str] = []
        self.nc = None

    async def connect(self, url: str) -> Client:
        servers, user, password = split_credentials(url)

        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.nc = await nats.connect(servers, user=user, password=password, inbox_prefix=inbox_prefix(user),
                                     error_cb=on_error, allow_reconnect=False)
        return self

    async def refused(self, what: str, timeout: float = 3.0) -> bool:
        await self.nc.flush()
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            # nats-py lower-cases the subject in the message
            if any("permissions violation" in e and what.lower() in e.lower() for e in self.errors):
                return True
            await asyncio.sleep(0.02)
        return False


@pytest.fixture
async def connect(servers):
    nats_server, _ = servers
    clients: list[Client] = []

    async def _connect(user: str) -> Client:
        client = await Client().connect(nats_server.url_for(user))
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        await client.nc.close()


@pytest.mark.parametrize("credentials", ["none", "wrong password", "unknown user"])
async def test_a_nats_client_without_valid_credentials_is_refused(servers, credentials):
    nats_server, _ = servers
    url = {"none": f"nats://{nats_server.address}",
           "wrong password": f"nats://channels:not-the-password@{nats_server.address}",
           "unknown user": f"nats://ingest:{nats_server.credentials.nats['channels']}@{nats_server.address}"}[credentials]
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(url, allow_reconnect=False, connect_timeout=5)


def test_valkey_without_the_password_is_refused(servers):
    _, valkey = servers
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=valkey.port, retry=None).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=valkey.port, password="not-the-password", retry=None).ping()
    assert redis.Redis.from_url(valkey.url).ping()


async def test_only_channels_hears_ingest_authorize_and_only_the_media_gateway_asks(connect):
    heard: dict[str, list[bytes]] = {}
    channels = await connect("channels")

    async def answer(msg):
        heard.setdefault("channels", []).append(msg.data)
        await msg.respond(IngestAuthorizeReply(allowed=False, reason="unknown key").to_json_bytes())

    await channels.nc.subscribe(INGEST_AUTHORIZE.subject, queue="channels", cb=answer)
    others = {user: await connect(user) for user in USERS if user != "channels"}
    for user, client in others.items():
        async def eavesdrop(msg, user=user):
            heard.setdefault(user, []).append(msg.data)

        # without a queue group, and in channels' own: neither may hear (or answer) a request
        await client.nc.subscribe(INGEST_AUTHORIZE.subject, cb=eavesdrop)
        await client.nc.subscribe(INGEST_AUTHORIZE.subject, queue="channels", cb=eavesdrop)
        assert await client.refused(f'subscription to "{INGEST_AUTHORIZE.subject}"'), user
        # nor read the answers in the asker's inbox, or anyone's
        asker = [f"{inbox_prefix('media-gateway')}.>"] if user != "media-gateway" else []
        for inbox in [*asker, "_INBOX.>"]:
            await client.nc.subscribe(inbox, cb=eavesdrop)
            assert await client.refused(f'subscription to "{inbox}"'), (user, inbox)

    key = "live_sk_0123456789abcdef"
    for _ in range(10):  # queue groups spread requests: an eavesdropper in the group would get some
        reply = await ask(others["media-gateway"].nc, INGEST_AUTHORIZE,
                          IngestAuthorizeRequest(stream_key=key, client_ip="203.0.113.9"), timeout=5)
        assert reply.allowed is False and reply.reason == "unknown key"
    assert len(heard.pop("channels")) == 10
    assert heard == {}, "someone other than channels heard a stream key"

    # asking is the media gateway's alone
    for user, client in others.items():
        if user == "media-gateway":
            continue
        await client.nc.publish(INGEST_AUTHORIZE.subject, IngestAuthorizeRequest(stream_key=key).to_json_bytes())
        assert await client.refused(f'publish to "{INGEST_AUTHORIZE.subject}"'), user
    await asyncio.sleep(0.2)
    assert heard == {}


async def test_a_service_cannot_publish_another_services_events_or_subscribe_outside_its_subjects(connect):
    for user, access in USERS.items():
        client = await connect(user)
        foreign = next(spec for spec in CATALOG.values() if spec.publisher != access.service and not spec.parameters)
        await client.nc.publish(foreign.subject, b"{}")
        assert await client.refused(f'publish to "{foreign.subject}"'), (user, foreign.subject)
        await client.nc.subscribe(">")
        assert await client.refused('subscription to ">"'), user
        # and the JetStream API of a stream it has no business with
        await client.nc.publish("$JS.API.STREAM.DELETE.EVENTS", b"")
        assert await client.refused('publish to "$JS.API.STREAM.DELETE.EVENTS"'), user


async def test_only_channels_may_create_or_change_a_stream(connect, servers):
    """A stream's subjects decide what it captures: one that captured channels.ingest.authorize
    would hold every stream key asked about, readable by its consumers."""
    import json

    admin = await nats.connect(servers[0].url)
    js = admin.jetstream()
    await js.add_stream(StreamConfig(name="EVENTS", subjects=list(EVENTS_STREAM.subjects)))
    capture = json.dumps({"name": "CAPTURE", "subjects": [INGEST_AUTHORIZE.subject]}).encode()
    widen = json.dumps({"name": "EVENTS", "subjects": [*EVENTS_STREAM.subjects, INGEST_AUTHORIZE.subject]}).encode()
    try:
        for user in USERS:
            if user == "channels":
                continue
            client = await connect(user)
            await client.nc.publish("$JS.API.STREAM.CREATE.CAPTURE", capture, reply=f"{inbox_prefix(user)}.x")
            assert await client.refused('publish to "$JS.API.STREAM.CREATE.CAPTURE"'), user
            await client.nc.publish("$JS.API.STREAM.UPDATE.EVENTS", widen, reply=f"{inbox_prefix(user)}.x")
            assert await client.refused('publish to "$JS.API.STREAM.UPDATE.EVENTS"'), user
        assert [i.config.name for i in await js.streams_info()] == ["EVENTS"]
        assert INGEST_AUTHORIZE.subject not in (await js.stream_info("EVENTS")).config.subjects
    finally:
        await js.delete_stream("EVENTS")
        await admin.close()


async def test_what_a_service_may_do_it_can(connect, servers):
    """The other side of the refusals above: the rights are enough for the work (the whole suite
    runs every service as its own user; this is the quick witness). channels creates the streams,
    the media gateway waits for EVENTS, then publishes to it."""
    media = await connect("media-gateway")
    channels = await connect("channels")
    waiting = asyncio.ensure_future(ensure_streams(media.nc.jetstream(), [EVENTS_STREAM], configure=False))
    await asyncio.sleep(1.0)
    assert not waiting.done()
    await ensure_streams(channels.nc.jetstream(), STREAMS, buckets=BUCKETS)
    await asyncio.wait_for(waiting, 5)
    ack = await media.nc.jetstream().publish("media.ingest.connected", b"{}", timeout=5)
    assert ack.stream == "EVENTS"
    assert media.errors == [] and channels.errors == []


@pytest.mark.parametrize("user", [u for u in USERS if USERS[u].events])
async def test_every_outbox_relay_can_ask_whether_jetstream_answers(connect, user):
    """After a refused publish the relay asks JetStream for its account info to tell "this row"
    from "JetStream is away": without the right, every refusal looked like an outage and a
    poison row was never parked (seen in the host rehearsal as a publish violation)."""
    client = await connect(user)
    info = await client.nc.jetstream().account_info()
    assert info is not None
    assert client.errors == []
