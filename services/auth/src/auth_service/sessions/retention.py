"""Retention of auth's own history (issue 14, item 10), run by the runtime's retention job."""

from servicekit.retention import Prune

from auth_service.config import Settings


def prunes(settings: Settings) -> list[Prune]:
    return [
        # refused anyway once expired; revoked and rotated ones expire like the rest
        Prune("refresh_tokens", "expires_at < now() - make_interval(secs => :secs)",
              lambda: {"secs": settings.refresh_token_retention_days * 86400}),
    ]
