"""Every check of the send pipeline, through REST (the edges call the same ChatService.send)."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from chat_service.messages.service import ChatRejected


async def send(client, user, channel_id, content="hello", **extra):
    return await client.post("/api/messages", headers=user.headers,
                             json={"channelId": channel_id, "content": content, **extra})


async def test_send_answers_the_message_with_its_stream_sequence(client, make_user, make_channel):
    owner, viewer = make_user(), make_user("viewer_a")
    channel_id = await make_channel(owner)
    r = await send(client, viewer, channel_id, "  hi there  ")
    assert r.status_code == 201, r.text
    message = r.json()
    assert message["content"] == "hi there"  # trimmed
    assert message["channelId"] == channel_id and message["streamId"] is None
    assert message["user"] == {"id": viewer.id, "username": "viewer_a", "displayName": "viewer_a", "badges": []}
    assert message["seq"] >= 1 and message["deletedAt"] is None and message["createdAt"].endswith("Z")
    second = (await send(client, viewer, channel_id, "again")).json()
    assert second["seq"] > message["seq"] and second["id"] != message["id"]


async def test_owner_and_moderator_badges_and_the_live_stream(client, make_user, make_channel, moderation_events):
    owner, mod = make_user(), make_user()
    channel_id = await make_channel(owner)
    await moderation_events.moderator(channel_id, mod.id)
    stream_id = await moderation_events.stream(channel_id)
    mine = (await send(client, owner, channel_id)).json()
    theirs = (await send(client, mod, channel_id)).json()
    assert mine["user"]["badges"] == ["owner"] and theirs["user"]["badges"] == ["moderator"]
    assert mine["streamId"] == stream_id == theirs["streamId"]
    # the stream's own send route reaches the same room
    r = await client.post(f"/api/streams/{stream_id}/messages", headers=mod.headers,
                          json={"content": "via the stream", "nonce": "s-1"})
    assert r.status_code == 201, r.text
    assert r.json()["channelId"] == channel_id and r.json()["streamId"] == stream_id
    r = await client.post("/api/messages", headers=owner.headers, json={"streamId": stream_id, "content": "too"})
    assert r.status_code == 201 and r.json()["channelId"] == channel_id


async def test_a_creator_with_two_channels_owns_both_rooms(client, make_user, make_channel, moderation_events):
    """API.md Extensions: several channels per creator; chat's replica keys ownership by channel."""
    owner, mod = make_user(), make_user()
    first, second = await make_channel(owner), await make_channel(owner)
    await moderation_events.moderator(second, mod.id)
    for channel_id in (first, second):
        assert (await send(client, owner, channel_id)).json()["user"]["badges"] == ["owner"]
    # a moderator of one of them is nobody special in the other
    assert (await send(client, mod, second)).json()["user"]["badges"] == ["moderator"]
    assert (await send(client, mod, first)).json()["user"]["badges"] == []

async def test_without_a_token_401(client, make_channel, make_user, assert_problem):
    channel_id = await make_channel(make_user())
    r = await client.post("/api/messages", json={"channelId": channel_id, "content": "x"})
    assert_problem(r, 401)


async def test_unknown_channel_and_room_choice(client, make_user, assert_problem):
    user = make_user()
    assert_problem(await send(client, user, "no-such-channel"), 404)
    r = await client.post("/api/messages", headers=user.headers, json={"content": "x"})
    assert_problem(r, 422)
    r = await client.post("/api/streams/nope/messages", headers=user.headers, json={"content": "x"})
    assert_problem(r, 404)


async def test_length_limits(client, make_user, make_channel, assert_problem):
    user = make_user()
    channel_id = await make_channel(make_user())
    body = assert_problem(await send(client, user, channel_id, "   "), 422)
    assert body["type"].endswith(":invalid") and body["errors"][0]["field"] == "content"
    body = assert_problem(await send(client, user, channel_id, "x" * 501), 422)
    assert body["type"].endswith(":too_long")
    ok = await send(client, user, channel_id, " " + "x" * 500 + " ")  # 500 after trimming
    assert ok.status_code == 201
    assert_problem(await send(client, user, channel_id, "nul\x00byte"), 422)


async def test_a_ban_refuses_with_403_and_an_unban_lifts_it(client, make_user, make_channel,
                                                            moderation_events, assert_problem):
    user = make_user()
    channel_id = await make_channel(make_user())
    await moderation_events.ban(channel_id, user.id)
    body = assert_problem(await send(client, user, channel_id), 403)
    assert body["type"].endswith(":banned")
    await moderation_events.unban(channel_id, user.id)
    assert (await send(client, user, channel_id)).status_code == 201


async def test_a_timeout_refuses_until_it_expires(client, make_user, make_channel, moderation_events,
                                                  assert_problem):
    user = make_user()
    channel_id = await make_channel(make_user())
    await moderation_events.ban(channel_id, user.id, until=datetime.now(UTC) + timedelta(seconds=1.5))
    r = await send(client, user, channel_id)
    body = assert_problem(r, 403)
    assert body["type"].endswith(":timed_out") and int(r.headers["Retry-After"]) >= 1
    await asyncio.sleep(1.6)
    assert (await send(client, user, channel_id)).status_code == 201


async def test_followers_only_exempts_owner_and_moderators(client, make_user, make_channel, moderation_events,
                                                           assert_problem):
    owner, mod, viewer = make_user(), make_user(), make_user()
    channel_id = await make_channel(owner)
    await moderation_events.moderator(channel_id, mod.id)
    await moderation_events.filters(channel_id, followers_only=True)
    body = assert_problem(await send(client, viewer, channel_id), 403)
    assert body["type"].endswith(":followers_only")
    assert (await send(client, owner, channel_id)).status_code == 201
    assert (await send(client, mod, channel_id)).status_code == 201
    await moderation_events.follow(channel_id, viewer.id)
    assert (await send(client, viewer, channel_id)).status_code == 201
    await moderation_events.follow(channel_id, viewer.id, followed=False)
    assert_problem(await send(client, viewer, channel_id), 403)


async def test_banned_words_are_whole_words_in_any_case(client, make_user, make_channel, moderation_events,
                                                        assert_problem):
    user = make_user()
    channel_id = await make_channel(make_user())
    await moderation_events.filters(channel_id, banned_words=["spoiler", "bad phrase"])
    body = assert_problem(await send(client, user, channel_id, "no SPOILER please"), 422)
    assert body["type"].endswith(":filtered")
    assert_problem(await send(client, user, channel_id, "that is a bad phrase!"), 422)
    assert (await send(client, user, channel_id, "spoilers are words too")).status_code == 201


async def test_profanity_filter_only_when_on(client, make_user, make_channel, moderation_events, assert_problem):
    user = make_user()
    channel_id = await make_channel(make_user())
    assert (await send(client, user, channel_id, "well shit")).status_code == 201
    await moderation_events.filters(channel_id, profanity_filter=True)
    assert_problem(await send(client, user, channel_id, "well shit"), 422)
    assert_problem(await send(client, user, channel_id, "well sh1t"), 422)  # leetspeak
    assert (await send(client, user, channel_id, "a classic assessment")).status_code == 201


async def test_slow_mode_with_retry_after_and_exemptions(client, make_user, make_channel, moderation_events,
                                                         assert_problem):
    owner, viewer = make_user(), make_user()
    channel_id = await make_channel(owner)
    await moderation_events.filters(channel_id, slow_mode_seconds=30)
    assert (await send(client, viewer, channel_id, "one")).status_code == 201
    r = await send(client, viewer, channel_id, "two")
    body = assert_problem(r, 429)
    assert body["type"].endswith(":slow_mode") and 1 <= int(r.headers["Retry-After"]) <= 30
    for n in range(3):
        assert (await send(client, owner, channel_id, f"owner {n}")).status_code == 201


@pytest.mark.settings(rate_limit_messages=3, rate_limit_moderator_messages=6, rate_limit_window_seconds=30)
async def test_rate_limit_per_user_per_room_with_a_higher_moderator_limit(client, make_user, make_channel,
                                                                          moderation_events, assert_problem):
    viewer, mod = make_user(), make_user()
    channel_id = await make_channel(make_user())
    other_room = await make_channel(make_user())
    await moderation_events.moderator(channel_id, mod.id)
    for n in range(3):
        assert (await send(client, viewer, channel_id, f"m{n}")).status_code == 201
    r = await send(client, viewer, channel_id, "too many")
    body = assert_problem(r, 429)
    assert body["type"].endswith(":rate_limited") and int(r.headers["Retry-After"]) >= 1
    assert (await send(client, viewer, other_room, "elsewhere")).status_code == 201  # per room
    for n in range(6):
        assert (await send(client, mod, channel_id, f"mod {n}")).status_code == 201
    assert_problem(await send(client, mod, channel_id, "mod 7"), 429)


async def test_checks_run_in_the_documented_order(chat, make_user, make_channel, moderation_events):
    """A banned user's overlong message is 'banned', not 'too_long'; a rejected send spends no
    rate-limit or slow-mode allowance."""
    user = make_user()
    channel_id = await make_channel(make_user())
    await moderation_events.filters(channel_id, slow_mode_seconds=60, banned_words=["nope"])
    with pytest.raises(ChatRejected) as exc:
        await chat.send(user_id=user.id, username=user.username, channel_id=channel_id, content="nope", nonce=None)
    assert exc.value.code == "filtered"
    accepted = await chat.send(user_id=user.id, username=user.username, channel_id=channel_id, content="fine")
    assert accepted.seq and accepted.content == "fine"
    await moderation_events.ban(channel_id, user.id)
    with pytest.raises(ChatRejected) as exc:
        await chat.send(user_id=user.id, username=user.username, channel_id=channel_id, content="x" * 900)
    assert exc.value.code == "banned"


async def test_a_ban_reaches_the_cache_without_waiting_for_the_ttl(chat, publish, make_user, make_channel,
                                                                   eventually):
    """Core NATS carries the ban to every process at once: the cached room state changes well
    before its TTL (5 s), even without waiting for the durable replica consumer."""
    from contracts.events.channels import ChannelBan

    user = make_user()
    channel_id = await make_channel(make_user())
    await chat.send(user_id=user.id, username=user.username, channel_id=channel_id, content="warm the cache")
    await publish("channel.user_banned", ChannelBan(channel_id=channel_id, user_id=user.id, until=None, reason=None))
    started = asyncio.get_running_loop().time()

    async def banned():
        state = await chat.moderation.channel(channel_id)
        return state.ban_of(user.id) is not None

    await eventually(banned, timeout=2, what="the ban in the cache")
    assert asyncio.get_running_loop().time() - started < 1.0


def test_the_hot_path_event_is_byte_for_byte_what_make_event_writes():
    """ChatService.send builds the chat.message event with orjson, not pydantic (issue 11); it must
    be exactly the envelope the contract's models write, and the message object the same."""
    import uuid

    from chat_service.messages.service import accepted_message
    from contracts.envelope import make_event
    from contracts.events.chat import ChatMessage, ChatUser

    for now in (datetime.now(UTC), datetime(2026, 12, 3, 17, 0, 0, tzinfo=UTC)):  # with and without microseconds
        for stream_id, badges, content in ((None, [], "hi"), ("s-1", ["owner"], 'quo"te \\ ünï 😀')):
            mid = str(uuid.uuid4())
            message, payload = accepted_message(mid, "c-1", stream_id, "u-1", "ada", "Ada L", badges, content, now)
            reference = ChatMessage(id=mid, seq=None, channel_id="c-1", stream_id=stream_id,
                                    user=ChatUser(id="u-1", username="ada", display_name="Ada L", badges=badges),
                                    content=content, created_at=now, deleted_at=None)
            assert payload == make_event("chat.message", reference, source="chat", id=mid, time=now).to_json_bytes()
            assert message.model_dump(mode="json", by_alias=True) == reference.model_dump(mode="json", by_alias=True)
