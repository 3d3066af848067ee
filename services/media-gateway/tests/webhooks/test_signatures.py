"""Signature checks in isolation (the HTTP tests cover them through the endpoints)."""

import pytest

from media_gateway.webhooks.service import parse_time
from media_gateway.webhooks.signatures import (
    SignatureError,
    sign,
    verify_cloudflare_signature,
    verify_mux,
    verify_shared_secret,
)

BODY = b'{"type":"video.live_stream.idle"}'
NOW = 1_700_000_000


def test_mux_signature_round_trip():
    verify_mux("s3cret", f"t={NOW},v1={sign('s3cret', NOW, BODY)}", BODY, now=NOW + 299, tolerance=300)


def test_mux_signature_is_case_insensitive_in_hex_and_tolerates_spaces():
    header = f"t={NOW}, v1={sign('s3cret', NOW, BODY).upper()}"
    verify_mux("s3cret", header, BODY, now=NOW, tolerance=300)


@pytest.mark.parametrize("now", [NOW + 301, NOW - 301])
def test_outside_the_window_is_refused(now):
    with pytest.raises(SignatureError, match="too old"):
        verify_mux("s3cret", f"t={NOW},v1={sign('s3cret', NOW, BODY)}", BODY, now=now, tolerance=300)


def test_the_timestamp_is_part_of_what_is_signed():
    # a valid signature moved to a fresh timestamp does not verify (no replay with a new t)
    old = sign("s3cret", NOW - 1000, BODY)
    with pytest.raises(SignatureError, match="does not match"):
        verify_mux("s3cret", f"t={NOW},v1={old}", BODY, now=NOW, tolerance=300)


def test_cloudflare_uses_time_and_sig1():
    verify_cloudflare_signature("cf", f"time={NOW},sig1={sign('cf', NOW, BODY)}", BODY, now=NOW, tolerance=300)
    with pytest.raises(SignatureError):
        verify_cloudflare_signature("cf", f"t={NOW},v1={sign('cf', NOW, BODY)}", BODY, now=NOW, tolerance=300)


def test_oversized_header_is_refused():
    with pytest.raises(SignatureError, match="malformed"):
        verify_mux("s3cret", f"t={NOW}," + "v1=00," * 1000, BODY, now=NOW, tolerance=300)


def test_shared_secret():
    verify_shared_secret("abc", "abc")
    for wrong in (None, "", "abd", "abcd"):
        with pytest.raises(SignatureError):
            verify_shared_secret("abc", wrong)


@pytest.mark.parametrize("value, expected", [
    ("2022-01-13T11:43:41.855717910Z", "2022-01-13T11:43:41.855717+00:00"),
    ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00"),
    ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00+00:00"),
    (1642074233, "2022-01-13T11:43:53+00:00"),
])
def test_parse_time(value, expected):
    assert parse_time(value).isoformat() == expected


@pytest.mark.parametrize("value", [None, "", "yesterday", True, {"a": 1}, 10**20])
def test_parse_time_rejects_garbage(value):
    assert parse_time(value) is None
