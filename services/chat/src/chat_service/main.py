"""Bootstrap: wires settings, connections, consumers, the persister and routers into the chat app."""

from __future__ import annotations

from importlib import metadata

from contracts.subjects import CHAT_STREAM, EVENTS_STREAM
from servicekit.app import ServiceRuntime
from servicekit.app import create_app as create_service_app
from servicekit.security import KeyFetcher

from chat_service.config import Settings
from chat_service.consumers import consumers
from chat_service.messages.persister import Persister
from chat_service.messages.service import ChatService
from chat_service.messages.views import router as messages_router
from chat_service.moderation.snapshots import ReplicaHandler
from chat_service.reports.views import router as reports_router
from chat_service.retention import prunes
from chat_service.responders import serve_history, serve_state


class ChatRuntime(ServiceRuntime):
    """The servicekit runtime plus the ChatService built on its connections."""

    chat: ChatService | None = None

    async def start(self) -> None:
        await super().start()
        self.chat = ChatService(self.db, self.js, self.nats, self.redis, self.settings)
        await self.chat.start()
        self._history_sub = await serve_history(self.nats, self.chat)
        self._state_sub = await serve_state(self.nats, self.db, self.js, self.settings.jetstream_replicas,
                                            configure=self.configures_streams)

    async def stop(self) -> None:
        for sub in (getattr(self, "_history_sub", None), getattr(self, "_state_sub", None)):
            if sub is not None:
                await sub.unsubscribe()
        if self.chat is not None:
            await self.chat.stop()
        await super().stop()


def build_runtime(settings: Settings, jwks: KeyFetcher | None = None) -> ChatRuntime:
    """`jwks` replaces fetching auth's JWKS over HTTP (tests hand in their own key)."""
    runtime = ChatRuntime(settings, streams=[EVENTS_STREAM, CHAT_STREAM], jwks=jwks)
    for prune in prunes(settings):
        runtime.add_prune(prune)
    for worker in consumers(settings, ReplicaHandler(runtime)):
        runtime.add_worker(worker, stop=worker.stop)
    if settings.persister_enabled:
        persister = Persister.from_settings(settings, None, None)

        async def persist(rt: ServiceRuntime) -> None:
            persister.db, persister.js = rt.db, rt.js
            await persister.run()

        persist.__name__ = "chat-persister"
        runtime.add_worker(persist, stop=persister.stop)
        runtime.persister = persister
    return runtime


def create_app(settings: Settings | None = None, *, configure_process: bool = True,
               jwks: KeyFetcher | None = None):
    settings = settings or Settings()
    runtime = build_runtime(settings, jwks)
    return create_service_app(
        runtime, title="Chat service",
        description=("Chat rooms per channel: sending (the same checks as the WebSocket edges: bans, "
                     "timeouts, length, followers-only, subscribers-only, banned words, profanity, slow mode, "
                     "rate limits), soft deletion, history and reports. A message is accepted once JetStream stored it; "
                     "`seq` is its CHAT stream sequence, strictly increasing within a room but not by one. "
                     "Errors are problem+json."),
        routers=[messages_router, reports_router],
        version=metadata.version("chat-service"),
        configure_process=configure_process,
    )
