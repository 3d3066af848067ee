"""Who a socket is signed in as: a leaf module (server, rooms and connection all import it; it
imports none of them)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(slots=True, frozen=True)
class EdgeUser:
    id: str
    username: str
    display_name: str
    entry: bytes  # the user object as JSON: the online-list member and the joined/typing payload


def edge_user(claims: dict) -> EdgeUser:
    """The user an access token's claims name."""
    uid = str(claims["sub"])
    username = str(claims.get("username") or uid)
    display = str(claims.get("displayName") or claims.get("name") or username)
    entry = orjson.dumps({"id": uid, "username": username, "displayName": display})
    return EdgeUser(uid, username, display, entry)
