"""Reports: filing (with chat.report.created through the outbox), listing and handling."""

import uuid

from contracts.envelope import parse_event


async def test_file_list_and_resolve_a_report(client, make_user, make_channel, moderation_events, nc,
                                              eventually, assert_problem):
    owner, mod, viewer, troll = make_user(), make_user(), make_user(), make_user()
    channel_id = await make_channel(owner)
    await moderation_events.moderator(channel_id, mod.id)
    bad = (await client.post("/api/messages", headers=troll.headers,
                             json={"channelId": channel_id, "content": "something rude"})).json()

    r = await client.post("/api/reports", headers=viewer.headers,
                          json={"channelId": channel_id, "messageId": bad["id"], "reason": "  rude  "})
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["userId"] == troll.id and report["reason"] == "rude" and report["status"] == "open"
    assert report["message"] is None and report["reporterId"] == viewer.id  # a viewer never reads it back
    second = (await client.post("/api/reports", headers=viewer.headers,
                                json={"channelId": channel_id, "userId": troll.id, "reason": "spam"})).json()

    # the event, relayed by the outbox
    js = nc.jetstream()
    sub = await js.subscribe("chat.report.created", ordered_consumer=True)
    try:
        seen = []

        async def next_event():
            try:
                msg = await sub.next_msg(timeout=0.5)
                seen.append(parse_event(msg.data).data)
            except Exception:
                pass
            return seen

        await eventually(next_event, lambda s: len(s) >= 2, what="two chat.report.created events")
        assert {e.id for e in seen} == {report["id"], second["id"]}
        assert seen[0].channel_id == channel_id
    finally:
        await sub.unsubscribe()

    for who in (owner, mod):
        page = (await client.get(f"/api/channels/{channel_id}/reports", headers=who.headers)).json()
        assert [i["id"] for i in page["items"]] == [second["id"], report["id"]]  # newest first
        assert page["items"][1]["message"]["content"] == "something rude"
    page = (await client.get(f"/api/channels/{channel_id}/reports", headers=owner.headers,
                             params={"limit": 1})).json()
    assert [i["id"] for i in page["items"]] == [second["id"]]
    page = (await client.get(f"/api/channels/{channel_id}/reports", headers=owner.headers,
                             params={"limit": 1, "cursor": page["nextCursor"]})).json()
    assert [i["id"] for i in page["items"]] == [report["id"]] and page["nextCursor"] is None

    assert_problem(await client.get(f"/api/channels/{channel_id}/reports", headers=viewer.headers), 403)
    assert_problem(await client.get(f"/api/channels/{channel_id}/reports"), 401)
    assert_problem(await client.get(f"/api/channels/{uuid.uuid4()}/reports", headers=owner.headers), 404)
    assert_problem(await client.get(f"/api/channels/{channel_id}/reports", headers=owner.headers,
                                    params={"cursor": "garbage!"}), 400)

    r = await client.patch(f"/api/reports/{report['id']}", headers=mod.headers, json={"status": "resolved"})
    assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["resolvedBy"] == mod.id
    assert_problem(await client.patch(f"/api/reports/{report['id']}", headers=viewer.headers,
                                      json={"status": "dismissed"}), 403)
    assert_problem(await client.patch(f"/api/reports/{uuid.uuid4()}", headers=mod.headers,
                                      json={"status": "dismissed"}), 404)
    assert_problem(await client.patch(f"/api/reports/{report['id']}", headers=mod.headers,
                                      json={"status": "maybe"}), 422)
    open_only = (await client.get(f"/api/channels/{channel_id}/reports", headers=owner.headers,
                                  params={"status": "open"})).json()
    assert [i["id"] for i in open_only["items"]] == [second["id"]]


async def test_report_validation(client, make_user, make_channel, assert_problem):
    viewer = make_user()
    channel_id, other = await make_channel(make_user()), await make_channel(make_user())
    elsewhere = (await client.post("/api/messages", headers=viewer.headers,
                                   json={"channelId": other, "content": "hi"})).json()
    assert_problem(await client.post("/api/reports", json={"channelId": channel_id, "reason": "x"}), 401)
    assert_problem(await client.post("/api/reports", headers=viewer.headers,
                                     json={"channelId": channel_id, "reason": "   "}), 422)
    for reason in ("\x00", "spam\x00", "bell\x07"):  # found by schemathesis: NUL was a 500
        assert_problem(await client.post("/api/reports", headers=viewer.headers,
                                         json={"channelId": channel_id, "reason": reason}), 422)
    ok = await client.post("/api/reports", headers=viewer.headers,
                           json={"channelId": channel_id, "reason": "line one\nline two\ttabbed"})
    assert ok.status_code == 201, ok.text
    assert_problem(await client.post("/api/reports", headers=viewer.headers,
                                     json={"channelId": str(uuid.uuid4()), "reason": "x"}), 404)
    # a message of another channel is not a message of this one
    assert_problem(await client.post("/api/reports", headers=viewer.headers,
                                     json={"channelId": channel_id, "messageId": elsewhere["id"], "reason": "x"}),
                   404)


async def test_filing_a_report_never_answers_the_message_to_a_plain_viewer(client, make_user, make_channel,
                                                                          moderation_events):
    """Issue 14 item 12: POST /api/reports answered the stored message with its content, even a
    deleted one, to any signed-in user. Only the channel's owner and moderators see it."""
    owner, mod, viewer, troll = make_user(), make_user(), make_user(), make_user()
    channel_id = await make_channel(owner)
    await moderation_events.moderator(channel_id, mod.id)
    sent = (await client.post("/api/messages", headers=troll.headers,
                              json={"channelId": channel_id, "content": "secret then deleted"})).json()
    assert (await client.delete(f"/api/messages/{sent['id']}", headers=troll.headers)).status_code == 204

    r = await client.post("/api/reports", headers=viewer.headers,
                          json={"channelId": channel_id, "messageId": sent["id"], "reason": "rude"})
    assert r.status_code == 201, r.text
    assert r.json()["message"] is None and "secret" not in r.text
    assert r.json()["messageId"] == sent["id"] and r.json()["userId"] == troll.id

    for who in (owner, mod):
        r = await client.post("/api/reports", headers=who.headers,
                              json={"channelId": channel_id, "messageId": sent["id"], "reason": "seen"})
        assert r.status_code == 201, r.text
        assert r.json()["message"]["content"] == "secret then deleted"
