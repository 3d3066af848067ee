"""The shared e2e helpers' own contract (no stack): `until` returns the first result that holds and
fails naming what it waited for and the last answer; `problem` checks an RFC 9457 answer."""

import httpx
import pytest

from .helpers import problem, until


def test_until_returns_the_first_result_the_predicate_accepts():
    answers = iter([1, 2, 3, 4])
    assert until("three", lambda: next(answers), lambda n: n >= 3, timeout=5, every=0) == 3


def test_until_fails_naming_what_was_awaited_and_the_last_answer():
    answer = httpx.Response(404, json={"detail": "no such channel"})
    with pytest.raises(AssertionError) as failure:
        until("chat to know the channel", lambda: answer, lambda r: r.status_code == 201, timeout=0.2, every=0.05)
    message = str(failure.value)
    assert "waiting for chat to know the channel" in message and "0.2s" in message
    assert "404" in message and "no such channel" in message


def test_problem_wants_the_status_and_the_media_type():
    body = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "gone"}
    assert problem(httpx.Response(404, json=body, headers={"content-type": "application/problem+json"}), 404) == body
    with pytest.raises(AssertionError):
        problem(httpx.Response(404, json=body), 404)  # application/json
    with pytest.raises(AssertionError):
        problem(httpx.Response(404, json=body, headers={"content-type": "application/problem+json"}), 410)
