"""Issue 14 item 11 on the socket: a send whose outcome the core does not know (JetStream did not
answer in time) comes back as `chat:error` code `unknown` with the nonce, not as a failure.
(The core's side, with a real SIGSTOPped nats-server, is in tests/test_send_outcome.py.)"""

from chat_service.messages.service import ChatOutcomeUnknown


async def test_an_unknown_outcome_is_a_chat_error_unknown_with_the_nonce(start_edge, fake_chat, client, make_user):
    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    c = await client(edge, make_user().token)
    c.send({"type": "chat:join", "channelId": room.channel_id})
    await c.expect("chat:history")
    fake_chat.reject = ChatOutcomeUnknown()
    c.send({"type": "chat:send", "content": "x", "nonce": "n-1"})
    error = await c.expect("chat:error")
    assert error["code"] == "unknown" and error["nonce"] == "n-1" and error["retryAfter"] == 1.0
    assert "same nonce" in error["message"]
    fake_chat.reject = None  # the retry with the same nonce is acked, on the same socket
    c.send({"type": "chat:send", "content": "x", "nonce": "n-1"})
    assert (await c.expect("chat:ack"))["nonce"] == "n-1"


async def test_a_refused_store_is_a_chat_error_for_that_send_only_and_the_socket_stays(
        start_edge, fake_chat, client, make_user):
    # issue 11: a Valkey or JetStream failure fails exactly the affected sends with chat:error; it
    # used to close the whole socket (1011), failing the sender's other sends in flight with it
    from chat_service.messages.service import ChatUnavailable

    room = fake_chat.add_room()
    edge = await start_edge(fake_chat)
    c = await client(edge, make_user().token)
    c.send({"type": "chat:join", "channelId": room.channel_id})
    await c.expect("chat:history")
    fake_chat.reject = ChatUnavailable()
    c.send({"type": "chat:send", "content": "x", "nonce": "n-2"})
    error = await c.expect("chat:error")
    assert error["code"] == "unavailable" and error["nonce"] == "n-2" and error["retryAfter"] == 1.0
    fake_chat.reject = None
    c.send({"type": "chat:send", "content": "x", "nonce": "n-2"})
    assert (await c.expect("chat:ack"))["nonce"] == "n-2"
