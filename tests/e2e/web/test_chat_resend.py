"""The chat client resends a send whose outcome is `unknown` (maybe stored) or `unavailable` (not
stored) with the SAME nonce, so the writer's message is stored at most once and never retyped.

The edge's side is in services/chat/tests/edge/test_send_unknown.py; here the page's own
ChatConnection (web/live.js) talks to a scripted socket (Playwright's route_web_socket), because the
real edge answers these codes only while NATS or Valkey are failing."""

import json

import pytest

pytestmark = pytest.mark.e2e


def _scripted_edge(sends: list[dict], answer):
    """A stand-in edge for route_web_socket: an empty history on chat:join, `answer(send)` to each
    chat:send (recorded in `sends` first)."""

    def edge(ws):
        def on_message(raw):
            event = json.loads(raw)
            if event["type"] == "chat:join":
                ws.send(json.dumps({"type": "chat:history", "channelId": event["channelId"], "messages": []}))
            elif event["type"] == "chat:send":
                sends.append(event)
                ws.send(json.dumps(answer(event)))
        ws.on_message(on_message)

    return edge


@pytest.mark.parametrize("code", ["unknown", "unavailable"])
def test_a_send_answered_unknown_or_unavailable_is_resent_with_the_same_nonce(page, code):
    sends: list[dict] = []

    def answer(send):
        if len(sends) == 1:
            return {"type": "chat:error", "code": code, "message": "x", "nonce": send["nonce"], "retryAfter": 0.2}
        return {"type": "chat:ack", "nonce": send["nonce"], "id": "m-1", "seq": 7}

    page.route_web_socket("**/ws", _scripted_edge(sends, answer))
    page.goto("/")
    ack = page.evaluate("""async () => {
        const { ChatConnection } = await import('/live.js');
        const conn = new ChatConnection({ channelId: 'c-1', onEvent() {} }).start();
        for (let i = 0; i < 100 && !conn.isOpen; i++) await new Promise(r => setTimeout(r, 50));
        await new Promise(r => setTimeout(r, 100));
        try { return await conn.send('hello'); } catch (err) { return { failed: err.code }; }
    }""")
    assert ack.get("id") == "m-1", ack
    assert len(sends) == 2 and sends[0]["nonce"] == sends[1]["nonce"] and sends[1]["content"] == "hello"


def test_a_definite_refusal_is_not_resent(page):
    sends: list[dict] = []
    page.route_web_socket("**/ws", _scripted_edge(sends, lambda send: {
        "type": "chat:error", "code": "filtered", "message": "no", "nonce": send["nonce"]}))
    page.goto("/")
    result = page.evaluate("""async () => {
        const { ChatConnection } = await import('/live.js');
        const conn = new ChatConnection({ channelId: 'c-1', onEvent() {} }).start();
        for (let i = 0; i < 100 && !conn.isOpen; i++) await new Promise(r => setTimeout(r, 50));
        try { await conn.send('hello'); return 'acked'; } catch (err) { return err.code; }
    }""")
    page.wait_for_timeout(500)
    assert result == "filtered" and len(sends) == 1
