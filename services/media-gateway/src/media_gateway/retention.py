"""Retention of the media gateway's history (issue 14, item 10), run by the runtime's retention job."""

from servicekit.retention import Prune

from media_gateway.config import Settings


def prunes(settings: Settings) -> list[Prune]:
    return [
        Prune("provider_events", "received_at < now() - make_interval(secs => :secs)",
              lambda: {"secs": settings.provider_events_retention_days * 86400}),
        # the session's recording job goes with it (ON DELETE CASCADE), but never one still being
        # turned into a VOD
        Prune("ingest_sessions",
              "ended_at < now() - make_interval(secs => :secs) AND NOT EXISTS ("
              "SELECT 1 FROM recordings r WHERE r.session_id = ingest_sessions.id "
              "AND r.status IN ('pending', 'processing'))",
              lambda: {"secs": settings.ingest_sessions_retention_days * 86400}),
    ]
