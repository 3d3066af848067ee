"""Simulcast destinations: owner-only CRUD, validation (scheme, non-public hosts), the key
encrypted at rest and never answered again, the media gateway's request over real NATS answering
it decrypted, and forwarder states applied newest-first."""

from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet

from contracts.events.media import SimulcastStateChanged
from contracts.requests import SimulcastDestinationsReply, SimulcastDestinationsRequest
from contracts.subjects import CHANNELS_SIMULCAST_DESTINATIONS

KEY = "abcd-secret-key-WXYZ"


def body(**over) -> dict:
    return {"name": "YouTube", "url": "rtmp://8.8.4.4/live2", "streamKey": KEY, "enabled": True, **over}


async def ask(nc, channel_id: str) -> SimulcastDestinationsReply:
    msg = await nc.request(CHANNELS_SIMULCAST_DESTINATIONS,
                           SimulcastDestinationsRequest(channel_id=channel_id).to_json_bytes(), timeout=3)
    return SimulcastDestinationsReply.model_validate_json(msg.data)


async def test_owner_manages_destinations_and_the_key_is_never_answered(client, make_user, create_channel, problem,
                                                                         sql, nc, channels_settings, published):
    alice, bob = make_user(), make_user()
    ch = await create_channel(alice)
    url = f"/api/channels/{ch['id']}/destinations"

    r = await client.post(url, json=body(), headers=alice.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["streamKeyLast4"] == "WXYZ" and created["state"] == "idle" and created["lastError"] is None
    assert KEY not in r.text
    listed = (await client.get(url, headers=alice.headers)).json()["items"]
    assert [d["id"] for d in listed] == [created["id"]] and KEY not in str(listed)

    # encrypted at rest with the configured key; the plain key is nowhere in the row
    [(cipher, suffix)] = await sql("SELECT key_ciphertext, key_suffix FROM channel_simulcast_destinations "
                                   "WHERE id = :id", id=created["id"])
    assert KEY.encode() not in bytes(cipher) and suffix == "WXYZ"
    assert Fernet(channels_settings.simulcast_encryption_key.get_secret_value()).decrypt(bytes(cipher)) == KEY.encode()
    assert KEY not in str(await published())

    # only the media gateway's request gets it back, as the full URL to publish to
    reply = await ask(nc, ch["id"])
    assert [(t.id, t.url.get_secret_value()) for t in reply.destinations] == \
        [(created["id"], f"rtmp://8.8.4.4/live2/{KEY}")]
    assert KEY not in repr(reply)

    problem(await client.get(url, headers=bob.headers), 403)
    problem(await client.post(url, json=body(), headers=bob.headers), 403)
    problem(await client.put(f"{url}/{created['id']}", json={"enabled": False}, headers=bob.headers), 403)
    problem(await client.delete(f"{url}/{created['id']}", headers=bob.headers), 403)

    r = await client.put(f"{url}/{created['id']}", json={"enabled": False, "streamKey": "new-key-1234"},
                         headers=alice.headers)
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["streamKeyLast4"] == "1234"
    assert (await ask(nc, ch["id"])).destinations == []  # disabled: not forwarded
    assert len(await published("channel.destinations_updated")) == 2

    assert (await client.delete(f"{url}/{created['id']}", headers=alice.headers)).status_code == 204
    problem(await client.delete(f"{url}/{created['id']}", headers=alice.headers), 404)
    assert (await client.get(url, headers=alice.headers)).json()["items"] == []


async def test_bad_destinations_are_422_and_nothing_is_stored(client, make_user, create_channel, problem, sql):
    alice = make_user()
    ch = await create_channel(alice)
    url = f"/api/channels/{ch['id']}/destinations"
    for bad in ("http://8.8.4.4/live", "srt://8.8.4.4:9000", "rtmp://", "not a url",
                "rtmp://127.0.0.1/live", "rtmp://10.0.0.5/live", "rtmp://[::1]/live", "rtmp://169.254.169.254/x",
                "rtmp://localhost/live", "rtmp://user:pw@8.8.4.4/live"):
        p = problem(await client.post(url, json=body(url=bad), headers=alice.headers), 422)
        assert p["errors"], bad
    problem(await client.post(url, json=body(streamKey="a/b"), headers=alice.headers), 422)
    problem(await client.post(url, json=body(enabled="yes"), headers=alice.headers), 422)
    assert await sql("SELECT id FROM channel_simulcast_destinations") == []
    # rtmps to a public address is fine
    assert (await client.post(url, json=body(url="rtmps://8.8.4.4:443/app"), headers=alice.headers)
            ).status_code == 201
    r = (await client.get(url, headers=alice.headers)).json()["items"][0]
    problem(await client.put(f"{url}/{r['id']}", json={"url": "rtmp://192.168.1.1/x"}, headers=alice.headers), 422)
    problem(await client.put(f"{url}/{r['id']}", json={"name": None}, headers=alice.headers), 422)


async def test_states_apply_newest_first(client, make_user, create_channel, send_event, sql, eventually):
    alice = make_user()
    ch = await create_channel(alice)
    created = (await client.post(f"/api/channels/{ch['id']}/destinations", json=body(),
                                 headers=alice.headers)).json()
    now = datetime.now(UTC)

    def state(s, at, error=None):
        return SimulcastStateChanged(channel_id=ch["id"], destination_id=created["id"], ingest_session_id="s1",
                                     state=s, last_error=error, at=at)

    await send_event("media.simulcast.state_changed", state("failed", now, "Connection refused"))
    await send_event("media.simulcast.state_changed", state("connecting", now - timedelta(seconds=5)))

    async def stored():
        rows = await sql("SELECT state, last_error FROM channel_simulcast_destinations WHERE id = :id",
                         id=created["id"])
        return rows[0] if rows and rows[0][0] == "failed" else None

    assert tuple(await eventually(stored)) == ("failed", "Connection refused")
    # wait until the older one was handled too (the inbox records both), then check it changed nothing
    await eventually(lambda: sql("SELECT count(*) FROM inbox WHERE consumer = 'channels-simulcast-state' "
                                 "HAVING count(*) >= 2"))
    assert tuple(await stored()) == ("failed", "Connection refused")
