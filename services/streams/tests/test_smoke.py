async def test_prepare_then_read(client, make_user, make_channel):
    owner = make_user()
    channel_id = await make_channel(owner, "My Channel")
    r = await client.post("/api/streams", headers=owner.headers,
                          json={"channelId": channel_id, "title": "Hello"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "OFFLINE" and body["channelId"] == channel_id and body["title"] == "Hello"
    r = await client.get(f"/api/streams/{body['id']}")
    assert r.status_code == 200 and r.json() == body
