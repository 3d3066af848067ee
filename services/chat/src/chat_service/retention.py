"""Retention of chat's own history (issue 14, item 10), run by the runtime's retention job.

Kept by default: chat_messages (history and VOD chat replay read it; `MESSAGES_RETENTION_DAYS`
sets a horizon) and chat_reports (a moderation record). The replicas' live rows are state, not
history; only their tombstones expire.
"""

from servicekit.retention import Prune

from chat_service.config import Settings

# a removal's tombstone (or an expired timeout) older than the horizon: no event older than it
# can still arrive, so a missing row means the same as the tombstone ("absent")
_REPLICAS = {
    "chat_moderators": "present = false",
    "chat_follows": "present = false",
    "chat_blocks": "present = false",
    "chat_bans": "(present = false OR until < now() - make_interval(secs => :secs))",
}


def prunes(settings: Settings) -> list[Prune]:
    def replica_horizon() -> dict:
        return {"secs": settings.replica_tombstones_retention_days * 86400}

    rules = [
        Prune("chat_message_tombstones", "deleted_at < now() - make_interval(secs => :secs)",
              lambda: {"secs": settings.message_tombstones_retention_hours * 3600}),
        *(Prune(table, f"{gone} AND changed_at < now() - make_interval(secs => :secs)", replica_horizon)
          for table, gone in _REPLICAS.items()),
    ]
    if settings.messages_retention_days is not None:
        rules.append(Prune("chat_messages", "created_at < now() - make_interval(secs => :secs)",
                           lambda: {"secs": settings.messages_retention_days * 86400}))
    return rules
