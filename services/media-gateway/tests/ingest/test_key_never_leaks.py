"""The stream key appears in no log line, no event and no stored row, whatever the callback."""

import logging
import re
import secrets

from sqlalchemy import text

from servicekit.db import Database
from servicekit.logging import JsonFormatter

KEY = "sk_" + secrets.token_urlsafe(24)
WRONG = "sk_" + secrets.token_urlsafe(24)
MALFORMED = "../" + secrets.token_urlsafe(12)


async def test_key_never_reaches_logs_events_or_rows(rtmp, channels, events, media_settings, caplog, make_flv):
    caplog.set_level(logging.DEBUG)
    channels.keys[KEY] = "chan-leak"

    assert (await rtmp("publish", WRONG, clientid="91")).status_code == 403
    assert (await rtmp("publish", MALFORMED, clientid="92")).status_code == 403
    location = (await rtmp("publish", KEY, clientid="93", extra=f"key={KEY}")).headers["location"]
    session_id = re.search(r"/src/([0-9a-f]{32})_src$", location).group(1)
    assert (await rtmp("update_publish", KEY, clientid="93")).status_code == 204
    assert (await rtmp("update_publish", KEY, clientid="94")).status_code == 404
    flv = make_flv(media_settings.record_dir / f"{session_id}_src.flv", seconds=1)
    assert (await rtmp("record_done", KEY, clientid="95", app="src", path=str(flv))).status_code == 202
    assert (await rtmp("publish_done", KEY, clientid="93")).status_code == 204
    await events.wait_for("media.ingest.disconnected", lambda d: d["ingestSessionId"] == session_id)
    await events.wait_for("media.recording.ready", lambda d: d["ingestSessionId"] == session_id, timeout=30)

    formatter = JsonFormatter("media-gateway")
    lines = [formatter.format(record) for record in caplog.records]
    assert any("publish authorized" in line for line in lines)
    assert any("publish refused" in line for line in lines)
    for secret in (KEY, WRONG, MALFORMED):
        for line in lines:
            assert secret not in line, line
        for raw in events.raw:
            assert secret.encode() not in raw

    db = Database(media_settings.database_url, pool_size=1)
    try:
        async with db.session() as session:
            dump = (await session.exec(text(
                "SELECT coalesce(string_agg(t::text, ' '), '') FROM ("
                "  SELECT row_to_json(s)::text AS t FROM ingest_sessions s"
                "  UNION ALL SELECT row_to_json(r)::text FROM recordings r"
                "  UNION ALL SELECT convert_from(payload, 'UTF8') || headers::text FROM outbox) x"))).scalar_one()
    finally:
        await db.dispose()
    assert session_id in dump
    assert KEY not in dump and WRONG not in dump
