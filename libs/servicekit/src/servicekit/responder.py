"""A core NATS responder for one request/reply subject of `contracts.requests`, written once.

A subclass names its `RequestSpec`, its queue group, what it answers (for the logs) and
`handle_request`; the class does the rest for every request, inside a span continuing the
requester's trace:

1. decode: a body over `max_request_bytes`, or one that is not a `spec.request`, is a
   `MalformedRequest`, answered with `reply_to_malformed` (a typed reply, or None: not answered);
2. handle: `handle_request(request)` gives the typed reply. When it raises, `"<what> failed"` is
   logged at ERROR with the exception's type only, and the request is answered with
   `reply_to_failure` (a typed reply, or None: not answered, so the requester's timeout and then
   its own fallback decide);
3. `answered(reply)` counts or logs the outcome (None: the request got no answer);
4. encode: the reply goes back as `to_json_bytes()`; a reply that cannot be sent (the requester gave
   up, the connection is closing) is logged at WARNING as "could not send the <what> reply".

Requests may carry secrets (a stream key) and replies too (simulcast keys): nothing here logs a
request, a reply, or an exception's text (a validation error quotes its input, a database error
its statement's parameters).
"""

from __future__ import annotations

import logging
from typing import Generic

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from contracts.requests import ReplyT, RequestSpec, RequestT
from servicekit.app import ServiceRuntime
from servicekit.messaging import SubscriptionWorker, handling_span


class MalformedRequest(ValueError):
    """A request body that is not the spec's request. `reason` is a fixed phrase, never the input;
    `error_type` names the parse error that refused it (None: refused for its size)."""

    def __init__(self, reason: str = "malformed request", *, error_type: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


class Responder(SubscriptionWorker, Generic[RequestT, ReplyT]):
    """Subclasses set these as class attributes (and `__name__`, the worker's name)."""

    spec: RequestSpec[RequestT, ReplyT]
    queue: str
    """The queue group: every replica subscribes in it, and each request reaches one of them."""
    what: str
    """What is answered, as the logs say it: "<what> failed", "could not send the <what> reply"."""
    logger: logging.Logger
    max_request_bytes: int = 1024
    """A larger request is malformed before it is parsed (the requests are a few ids)."""

    @property
    def runtime(self) -> ServiceRuntime:
        if self._runtime is None:
            raise RuntimeError(f"{self.__name__} answers once the runtime has started it")
        return self._runtime

    async def subscribe(self, runtime: ServiceRuntime) -> Subscription:
        # the runtime starts its workers after it connected
        assert runtime.nats is not None
        return await runtime.nats.subscribe(self.spec.subject, queue=self.queue, cb=self.handle)

    async def handle_request(self, request: RequestT) -> ReplyT:
        raise NotImplementedError

    def decode(self, data: bytes) -> RequestT:
        """The request, or MalformedRequest."""
        if len(data) > self.max_request_bytes:
            raise MalformedRequest("request too large")
        try:
            return self.spec.request.model_validate_json(data)
        except ValueError as exc:  # pydantic's ValidationError is one
            raise MalformedRequest(error_type=type(exc).__name__) from None

    def reply_to_malformed(self, problem: MalformedRequest) -> ReplyT | None:
        """The answer to a request that does not decode; None: none (the requester times out)."""
        return None

    def reply_to_failure(self, exc: Exception) -> ReplyT | None:
        """The answer when `handle_request` raised (already logged); None: none (the requester
        times out)."""
        return None

    def answered(self, reply: ReplyT | None) -> None:
        """Called once per request with what it was answered; None: it got no answer."""

    async def answer(self, data: bytes) -> ReplyT | None:
        """What a request body is answered with (None: nothing), without sending it."""
        try:
            request = self.decode(data)
        except MalformedRequest as problem:
            return self.reply_to_malformed(problem)
        try:
            return await self.handle_request(request)
        except Exception as exc:
            self.logger.error(f"{self.what} failed", extra={"errorType": type(exc).__name__})
            return self.reply_to_failure(exc)

    async def handle(self, msg: Msg) -> None:
        with handling_span(msg, f"answer {self.spec.subject}"):
            reply = await self.answer(msg.data)
            self.answered(reply)
            if reply is None or not msg.reply:
                return
            try:
                await msg.respond(reply.to_json_bytes())
            except Exception as exc:
                self.logger.warning(f"could not send the {self.what} reply",
                                    extra={"errorType": type(exc).__name__})
