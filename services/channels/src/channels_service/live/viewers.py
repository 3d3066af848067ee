"""Live viewer counts for the directory order, from VIEWERS (`stream.viewers.<streamId>`).

A count is superseded a second later, so it is not handled like a domain event: no inbox row, no
retries, no dead letter. The stream keeps only the latest count per live stream; this worker reads
it with an ordered consumer that starts at each subject's last message, so a (re)started channels
service catches up at once, then applies every newer count with the stored-time guard of
`live.service.apply_viewers` (an older count never replaces a newer one).
"""

from __future__ import annotations

import logging

from nats.js.api import DeliverPolicy

from contracts.envelope import parse_event
from contracts.events.streams import StreamViewers
from contracts.subjects import STREAM_VIEWERS_ALL, VIEWERS_STREAM
from servicekit.messaging import SubscriptionWorker

from channels_service.live.service import apply_viewers

log = logging.getLogger("channels.viewers")


class ViewerCounts(SubscriptionWorker):
    __name__ = "channels-viewer-counts"

    async def subscribe(self, runtime):
        return await runtime.js.subscribe(STREAM_VIEWERS_ALL, stream=VIEWERS_STREAM.name, cb=self.handle,
                                          ordered_consumer=True, deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)

    async def handle(self, msg) -> None:
        try:
            event = parse_event(msg.data)
        except Exception:
            log.warning("unreadable viewer count ignored", extra={"subject": msg.subject})
            return
        if not isinstance(event.data, StreamViewers):
            return
        try:
            async with self._runtime.db.session() as session:
                await apply_viewers(session, event.data, event.time)
                await session.commit()
        except Exception as exc:  # the next count (a second later at most) replaces this one
            log.warning("viewer count not applied", extra={"streamId": event.data.stream_id, "error": repr(exc)})
