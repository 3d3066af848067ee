"""Retention of the streams service (issue 14, item 10), run by the runtime's retention job.

Stream history is kept by default: the channel page lists past broadcasts with their VODs.
An operator who wants a horizon sets STREAMS_RETENTION_DAYS; only archived streams go (a LIVE,
ENDING or prepared one is never history), timed from their end (or creation, for a prepared
session that never went live).
"""

from servicekit.retention import Prune

from streams_service.config import Settings


def prunes(settings: Settings) -> list[Prune]:
    if settings.streams_retention_days is None:
        return []
    return [Prune("streams", "status = 'ARCHIVED' AND COALESCE(end_time, created_at) "
                             "< now() - make_interval(secs => :secs)",
                  lambda: {"secs": settings.streams_retention_days * 86400})]
