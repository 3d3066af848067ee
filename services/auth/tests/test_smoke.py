async def test_register_then_read_self(client, register, bearer):
    me = await register("smoke_user")
    r = await client.get("/api/auth/user", headers=bearer(me))
    assert r.status_code == 200
    assert r.json()["username"] == "smoke_user"
