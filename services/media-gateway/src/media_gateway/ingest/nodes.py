"""Ingest nodes: whatever is done to a session is done by the node that holds it.

An ingest node is one nginx-rtmp and the media gateway beside it (Settings.ingest_node names it).
Its nginx-rtmp holds the publisher, its media gateway the source pull, the transcoders and the
LL-HLS origin, all in memory; only that node can drop the publisher or let the session go. Yet the
decision to drop may be taken anywhere: the revocation consumer runs on whichever replica the
event reaches, the liveness sweep on every node, a superseding publish on the node the encoder
reconnected to. So a drop names the session's node, and a node other than this one gets it as a
core NATS request on `ingest.node.<node>.drop`, which only that node subscribes to.

A node that does not answer (dead, cut off) holds nothing anyone can still drop: its sessions end
through the liveness sweep of the other nodes (no on_update for `ingest_stale_seconds`), and an
encoder that reconnects lands on another node, where its new session supersedes the old one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from contracts.subjects import INGEST_NODE_DROP_TEMPLATE
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from servicekit import messaging
from servicekit.messaging import SubscriptionWorker, handling_span

from media_gateway.config import Settings
from media_gateway.ingest.control import NginxControl
from media_gateway.ingest.service import source_stream_name
from media_gateway.ingest.source_pull import SourcePulls

log = logging.getLogger("media_gateway.ingest.nodes")


def drop_subject(node: str) -> str:
    return INGEST_NODE_DROP_TEMPLATE.format(node=node)


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class DropRequest(_Wire):
    session_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    # nginx-rtmp's name for the publisher (the source stream's name, or md5 of the push URL)
    relay_name: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-zA-Z_]+$")
    # also let the session go (close the pull, stop the transcoders): its on_publish_done was lost
    release: bool = False


class DropReply(_Wire):
    # publishers nginx-rtmp dropped; None: the node's nginx-rtmp did not answer
    dropped: int | None = None
    error: str | None = None


class NodeDrops:
    def __init__(self, settings: Settings, control: NginxControl, pulls: SourcePulls):
        self.node = settings.ingest_node
        self.timeout = settings.node_drop_timeout_seconds
        self.control = control
        self.pulls = pulls
        self._nats: Callable[[], NATS | None] = lambda: None

    def bind(self, nats: Callable[[], NATS | None]) -> None:
        """The runtime's connection, once it is open (the app is wired before it connects)."""
        self._nats = nats

    async def drop(self, node: str, relay_name: str, session_id: str, *, release: bool = False) -> int | None:
        """Drop the session's publisher on `node`; how many nginx-rtmp dropped, None when that is
        unknown (no answer, or this node's nginx-rtmp did not answer)."""
        if node == self.node:
            return await self.here(relay_name, session_id, release=release)
        nc = self._nats()
        if nc is None:
            log.warning("no NATS connection to reach the session's node", extra={"sessionId": session_id,
                                                                                   "node": node})
            return None
        request = DropRequest(session_id=session_id, relay_name=relay_name, release=release)
        try:
            msg = await messaging.request(nc, drop_subject(node), request.model_dump_json(by_alias=True).encode(),
                                          timeout=self.timeout)
        except (NoRespondersError, NatsTimeout):
            # gone or cut off: its encoder's connection goes with it, the sweep ends the session
            log.warning("the session's ingest node did not answer the drop",
                        extra={"sessionId": session_id, "node": node})
            return None
        try:
            reply = DropReply.model_validate_json(msg.data)
        except ValidationError:
            log.warning("unreadable drop reply", extra={"sessionId": session_id, "node": node})
            return None
        log.info("ingest dropped on its node", extra={"sessionId": session_id, "node": node,
                                                      "dropped": reply.dropped})
        return reply.dropped

    async def here(self, relay_name: str, session_id: str, *, release: bool = False) -> int | None:
        dropped = await self.control.drop_publisher(relay_name, session_id)
        if release:
            await self.pulls.release(session_id, source_stream_name(session_id))
        return dropped


class DropResponder(SubscriptionWorker):
    """Answers the drops other replicas send to this node."""

    __name__ = "ingest-node-drops"

    def __init__(self, drops: NodeDrops):
        super().__init__()
        self.drops = drops

    async def subscribe(self, runtime):
        # no queue group: the subject is this node's alone
        return await runtime.nats.subscribe(drop_subject(self.drops.node), cb=self.handle)

    async def handle(self, msg: Msg) -> None:
        with handling_span(msg, f"answer {drop_subject(self.drops.node)}"):
            try:
                request = DropRequest.model_validate_json(msg.data)
            except ValidationError:
                reply = DropReply(error="malformed drop request")
            else:
                reply = DropReply(dropped=await self.drops.here(request.relay_name, request.session_id,
                                                                release=request.release))
            if msg.reply:
                try:
                    await msg.respond(reply.model_dump_json(by_alias=True).encode())
                except Exception as exc:  # noqa: BLE001  the asker times out and logs it
                    log.warning("could not answer a drop", extra={"errorType": type(exc).__name__})
