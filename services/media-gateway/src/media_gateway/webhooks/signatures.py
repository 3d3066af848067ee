"""Webhook authentication, checked over the raw body before anything parses it.

Mux (`Mux-Signature: t=<unix>,v1=<hex>`) and Cloudflare Stream's video webhooks
(`Webhook-Signature: time=<unix>,sig1=<hex>`) sign `<timestamp> + "." + <raw body>` with
HMAC-SHA256 under the endpoint's secret; any listed signature may match (secret rotation), and a
timestamp more than the tolerance away from now is refused, so a captured request cannot be
replayed later. Cloudflare's live-input notifications carry a shared secret in `cf-webhook-auth`.
All comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

MAX_HEADER_LENGTH = 2048


class SignatureError(ValueError):
    """Missing, malformed, wrong or stale; the message is safe to return to the caller."""


def _parse(header: str | None, time_key: str, sig_key: str) -> tuple[str, list[str]]:
    if not header:
        raise SignatureError("The signature header is missing.")
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError("The signature header is malformed.")
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == time_key and timestamp is None:
            timestamp = value.strip()
        elif key == sig_key:
            signatures.append(value.strip().lower())
    if timestamp is None or not timestamp.isdigit() or not signatures:
        raise SignatureError("The signature header is malformed.")
    return timestamp, signatures


def verify_timestamped_hmac(secret: str, header: str | None, body: bytes, *, now: float, tolerance: int,
                            time_key: str, sig_key: str) -> None:
    timestamp, signatures = _parse(header, time_key, sig_key)
    if abs(now - int(timestamp)) > tolerance:
        raise SignatureError("The signature is too old (or from the future).")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    matched = False
    for candidate in signatures:  # no early exit: every candidate costs the same
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise SignatureError("The signature does not match.")


def verify_mux(secret: str, header: str | None, body: bytes, *, now: float, tolerance: int) -> None:
    verify_timestamped_hmac(secret, header, body, now=now, tolerance=tolerance, time_key="t", sig_key="v1")


def verify_cloudflare_signature(secret: str, header: str | None, body: bytes, *, now: float,
                                tolerance: int) -> None:
    verify_timestamped_hmac(secret, header, body, now=now, tolerance=tolerance, time_key="time", sig_key="sig1")


def verify_shared_secret(secret: str, header: str | None) -> None:
    if not header:
        raise SignatureError("The cf-webhook-auth header is missing.")
    if not hmac.compare_digest(secret.encode(), header.encode()):
        raise SignatureError("The cf-webhook-auth header does not match.")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex signature a provider would send (for tests and local tooling)."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
