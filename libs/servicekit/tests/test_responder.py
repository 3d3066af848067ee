"""servicekit.responder over real NATS: what a request is answered with, what is logged, and that
neither ever carries what the request carried (requests may hold stream keys)."""

from __future__ import annotations

import asyncio
import logging
import types
import uuid

import nats
import orjson
import pytest
from nats.errors import TimeoutError as NatsTimeout
from pydantic import Field, SecretStr

from contracts.base import WireModel
from contracts.requests import RequestSpec
from servicekit.messaging import ask
from servicekit.responder import MalformedRequest, Responder

SECRET = "live_" + "S" * 43


class Lookup(WireModel):
    name: str = Field(min_length=1)
    secret: SecretStr | None = None


class Answer(WireModel):
    ok: bool
    value: str | None = None
    error: str | None = None


class Upper(Responder[Lookup, Answer]):
    """Answers a name in capitals; the name `boom` fails as a database would, quoting the secret."""

    __name__ = "test-upper"
    queue = "test-responders"
    what = "upper lookup"
    logger = logging.getLogger("tests.servicekit.responder")

    def __init__(self, spec: RequestSpec[Lookup, Answer], *, answers_errors: bool = True):
        super().__init__()
        self.spec = spec
        self.answers_errors = answers_errors
        self.outcomes: list[Answer | None] = []

    async def handle_request(self, request: Lookup) -> Answer:
        if request.name == "boom":
            secret = request.secret.get_secret_value() if request.secret else ""
            raise RuntimeError(f"statement failed with parameters ({secret!r})")
        return Answer(ok=True, value=request.name.upper())

    def reply_to_malformed(self, problem: MalformedRequest) -> Answer | None:
        return Answer(ok=False, error=problem.reason) if self.answers_errors else None

    def reply_to_failure(self, exc: Exception) -> Answer | None:
        return Answer(ok=False, error="unavailable") if self.answers_errors else None

    def answered(self, reply: Answer | None) -> None:
        self.outcomes.append(reply)


@pytest.fixture
def spec() -> RequestSpec[Lookup, Answer]:
    # a subject of its own per test: a responder left over from another test cannot answer
    return RequestSpec(subject=f"test.responder.{uuid.uuid4().hex}", request=Lookup, reply=Answer,
                       requester="tests", responder="tests", description="servicekit.responder's tests")


@pytest.fixture
async def serve(nats_url):
    """`await serve(responder)`: run it on its own connection, as a service's runtime would."""
    running: list[tuple[Responder, asyncio.Task, nats.NATS]] = []

    async def _serve(responder: Responder) -> Responder:
        connection = await nats.connect(nats_url)
        task = asyncio.create_task(responder(types.SimpleNamespace(nats=connection)))
        running.append((responder, task, connection))
        await asyncio.wait_for(responder.ready.wait(), 5)
        # `ready` means subscribed on the client; the server knows it once the SUB is flushed
        await connection.flush()
        return responder

    yield _serve
    for responder, task, connection in running:
        responder.stop()
        await asyncio.wait_for(task, 5)
        await connection.close()


def leaked(records: list[logging.LogRecord]) -> list[str]:
    """The log records that carry the secret anywhere: message, arguments, extra fields, traceback."""
    return [record.getMessage() for record in records
            if SECRET in record.getMessage() or SECRET in repr(vars(record))
            or (record.exc_info and SECRET in logging.Formatter().formatException(record.exc_info))]


async def test_a_good_request_is_answered_with_the_handlers_reply(nc, spec, serve):
    upper = await serve(Upper(spec))
    assert await ask(nc, spec, Lookup(name="abc"), timeout=3) == Answer(ok=True, value="ABC")
    assert upper.outcomes == [Answer(ok=True, value="ABC")]


async def test_a_malformed_request_is_answered_with_the_typed_error_at_once(nc, spec, serve, caplog):
    caplog.set_level(logging.DEBUG)
    upper = await serve(Upper(spec))
    junk = [b"", b"not json", b"[1]", b'{"name": 5}', b'{"name": ""}',
            orjson.dumps({"name": 7, "secret": SECRET}), orjson.dumps({"secret": SECRET})]
    for body in junk:
        # a short timeout: a malformed request must be answered, not left to time out
        msg = await nc.request(spec.subject, body, timeout=1)
        assert Answer.model_validate_json(msg.data) == Answer(ok=False, error="malformed request"), body
        assert SECRET.encode() not in msg.data
    too_large = orjson.dumps({"name": "x" * Upper.max_request_bytes})
    msg = await nc.request(spec.subject, too_large, timeout=1)
    assert Answer.model_validate_json(msg.data) == Answer(ok=False, error="request too large")
    assert len(upper.outcomes) == len(junk) + 1
    assert leaked(caplog.records) == []


async def test_a_handler_failure_is_answered_with_an_error_and_logged_without_the_secret(nc, spec, serve,
                                                                                        caplog):
    caplog.set_level(logging.DEBUG)
    upper = await serve(Upper(spec))
    msg = await nc.request(spec.subject, orjson.dumps({"name": "boom", "secret": SECRET}), timeout=1)
    assert Answer.model_validate_json(msg.data) == Answer(ok=False, error="unavailable")
    [failed] = [r for r in caplog.records if r.name == Upper.logger.name]
    assert (failed.levelno, failed.getMessage(), failed.errorType) == (logging.ERROR, "upper lookup failed",
                                                                       "RuntimeError")
    assert leaked(caplog.records) == []
    assert upper.outcomes == [Answer(ok=False, error="unavailable")]
    # the responder is still subscribed after a failure
    assert await ask(nc, spec, Lookup(name="after"), timeout=3) == Answer(ok=True, value="AFTER")


async def test_without_error_replies_a_failed_request_is_not_answered(nc, spec, serve, caplog):
    """What channels.get does: the requester's timeout, then its own fallback, decide."""
    caplog.set_level(logging.DEBUG)
    upper = await serve(Upper(spec, answers_errors=False))
    for body in (b"not json", orjson.dumps({"name": "boom", "secret": SECRET})):
        with pytest.raises(NatsTimeout):
            await nc.request(spec.subject, body, timeout=0.5)
    assert upper.outcomes == [None, None]
    assert [r.getMessage() for r in caplog.records if r.name == Upper.logger.name] == ["upper lookup failed"]
    assert leaked(caplog.records) == []


async def test_each_request_is_answered_by_one_member_of_the_queue_group(nc, spec, serve):
    first, second = await serve(Upper(spec)), await serve(Upper(spec))
    inbox = nc.new_inbox()
    replies = await nc.subscribe(inbox)
    for i in range(20):
        await nc.publish(spec.subject, Lookup(name=f"n{i}").to_json_bytes(), reply=inbox)
    await nc.flush()
    answers = []
    while True:
        try:
            answers.append(Answer.model_validate_json((await replies.next_msg(timeout=0.5)).data))
        except NatsTimeout:
            break
    assert sorted(a.value or "" for a in answers) == sorted(f"N{i}" for i in range(20))
    # both replicas took part (all 20 on one of two: a chance of 2 in a million)
    assert first.outcomes and second.outcomes
    assert len(first.outcomes) + len(second.outcomes) == 20
