"""Playback (public, through the gateway's cache): `/hls/<node>/<session>/index.m3u8` is the
master playlist, `/hls/<node>/<session>_src[_<rendition>]/index.m3u8` a rendition's LL-HLS media
playlist, and beside it `init-<n>.mp4`, `part-<msn>.<part>.m4s` and `seg-<msn>.m4s`. `<node>` is the
ingest node holding the session (this process's, Settings.ingest_node): the gateway routes by it,
and a request for another node's session is answered 404 here, never with another node's data.

Blocking reloads (RFC 8216bis 6.2.5.2): `_HLS_msn=<M>[&_HLS_part=<P>]` is held until the playlist
lists that part (or segment), 503 after three target durations, 400 when more than two segments
ahead or malformed. A part announced next (the preload hint) is held the same way. With a DVR window
the playlist offers delta updates: `_HLS_skip=YES` answers with the segments older than
CAN-SKIP-UNTIL replaced by EXT-X-SKIP (RFC 8216bis 6.2.5.1).

Every answer says how many times this origin served that URI (`X-Origin-Fetch`): behind the
gateway's cache it stays 1 for every viewer of a part, which is what the cache is for.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from servicekit.deps import get_settings
from servicekit.problems import Problem, problem_responses

from media_gateway.llhls.origin import FETCHES, Gone, Origin

router = APIRouter(prefix="/hls/{node}", tags=["live playback (LL-HLS)"])

M3U8 = "application/vnd.apple.mpegurl"
MP4 = "video/mp4"
CORS = {"Access-Control-Allow-Origin": "*"}
# parts, segments and init sections never change under their name (names are per session and
# sequential); a playlist that answered a blocking reload lists at least what it was asked for, so
# it may be reused for that same question a little while; a plain playlist changes every part
IMMUTABLE = "public, max-age=3600, immutable"
BLOCKING = "public, max-age=10"
LIVE = "public, max-age=1"
MAX_NUMBER = 10**9
NOT_HERE = "No such live stream here (it never started, or it ended a while ago)."


def get_origin(request: Request, node: str) -> Origin:
    origin = getattr(request.app.state, "origin", None)
    if origin is None or node != get_settings(request).ingest_node:
        raise _problem(404, NOT_HERE)
    return origin


def _problem(status: int, detail: str) -> Problem:
    # players on other origins read these too, and a cache must not keep them
    return Problem(status, detail, headers={"Cache-Control": "no-store", **CORS})


def _number(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 9:
        raise _problem(400, f"{name} must be a whole number from 0 to {MAX_NUMBER - 1}.")
    return int(value)


def _answer(body: bytes | str, media_type: str, cache: str, fetch: int) -> Response:
    return Response(body, media_type=media_type, headers={"Cache-Control": cache, **CORS,
                                                          "X-Origin-Fetch": str(fetch)})


def _uri(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


PLAYLIST = {200: {"description": "The playlist", "content": {M3U8: {"schema": {"type": "string"}}}},
            **problem_responses(400, 404, 503)}
MEDIA = {200: {"description": "An init section, part or segment (fragmented MP4)",
               "content": {MP4: {"schema": {"type": "string", "format": "binary"}}}},
         **problem_responses(404)}


@router.get("/{name}/index.m3u8", response_class=Response, responses=PLAYLIST)
async def playlist(request: Request, node: str, name: str,
                   hls_msn: Annotated[str | None, Query(alias="_HLS_msn", description="blocking reload: segment")] = None,
                   hls_part: Annotated[str | None, Query(alias="_HLS_part", description="blocking reload: part")] = None,
                   hls_skip: Annotated[str | None, Query(alias="_HLS_skip",
                                                         description="delta update: YES")] = None,
                   ) -> Response:
    """The master playlist (`<session>`) or a rendition's media playlist (`<session>_src...`)."""
    origin = get_origin(request, node)
    msn, part = _number(hls_msn, "_HLS_msn"), _number(hls_part, "_HLS_part")
    if part is not None and msn is None:
        raise _problem(400, "_HLS_part needs _HLS_msn.")
    # v2 would also skip date ranges, which are never offered (no CAN-SKIP-DATERANGES)
    if hls_skip is not None and hls_skip != "YES":
        raise _problem(400, "_HLS_skip must be YES.")
    try:
        if "_" not in name:
            media = origin.session(name)
            FETCHES.labels("master").inc()
            return _answer(origin.master(name), M3U8, LIVE, media.count(_uri(request)))
        media, rendition = origin.rendition(name)
    except Gone:
        raise _problem(404, NOT_HERE) from None
    timeout = 3 * rendition.playlist.target_duration()
    try:
        ready = await origin.wait_playlist(rendition, msn, part, timeout)
    except ValueError:
        raise _problem(400, "_HLS_msn is more than two segments past the end of the playlist.") from None
    if not ready:
        raise _problem(503, "The requested part did not appear in time; ask again.")
    FETCHES.labels("playlist").inc()
    return _answer(rendition.playlist.render(skip=hls_skip == "YES"), M3U8, BLOCKING if msn is not None else LIVE,
                   media.count(_uri(request)))


@router.get("/{name}/{filename}", response_class=Response, responses=MEDIA)
async def media_file(request: Request, node: str, name: str, filename: str) -> Response:
    """`init-<n>.mp4`, `part-<msn>.<part>.m4s` (held while it is the next one) or `seg-<msn>.m4s`."""
    origin = get_origin(request, node)
    try:
        media, rendition = origin.rendition(name)
    except Gone:
        raise _problem(404, NOT_HERE) from None
    data = await origin.wait_resource(rendition, filename, 3 * rendition.playlist.target_duration())
    if data is None:
        raise _problem(404, "No such part, segment or init section (not yet, or no longer, in the playlist).")
    FETCHES.labels(filename.split("-", 1)[0]).inc()
    return _answer(data, MP4, IMMUTABLE, media.count(_uri(request)))


@router.options("/{name}/{filename}", status_code=204, response_class=Response, include_in_schema=False)
async def preflight() -> Response:
    return Response(status_code=204, headers={**CORS, "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                                              "Access-Control-Allow-Headers": "Range",
                                              "Access-Control-Max-Age": "86400"})
