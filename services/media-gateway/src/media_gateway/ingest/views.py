"""nginx-rtmp callbacks (internal network only; the public gateway never routes /hooks/).

nginx-rtmp reads only the status code: 2xx goes on, 3xx on on_publish renames the stream to the
Location, anything else refuses the publish (on_publish) or drops it (on_update).
"""

import logging

from fastapi import APIRouter, Request, Response
from starlette.background import BackgroundTask

from servicekit.problems import Problem, problem_responses

from media_gateway.deps import (
    DropsDep,
    LimiterDep,
    PullsDep,
    Runtime,
    SessionDep,
    SettingsDep,
    SimulcastsDep,
    TranscodersDep,
    read_limited_body,
)
from media_gateway.ingest import service
from media_gateway.ingest.models import RtmpCallback
from media_gateway.ingest.service import Refused

log = logging.getLogger("media_gateway.ingest")
router = APIRouter(prefix="/hooks/rtmp", tags=["ingest callbacks (internal)"])

MAX_FORM_BYTES = 16 * 1024
REFUSED = "The stream key was refused."
RTMP_FORM = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object",
            "properties": {name: {"type": "string"} for name in
                           ("call", "app", "name", "clientid", "addr", "tcurl", "type", "path", "recorder")},
        }}},
    }
}


async def _callback(request: Request) -> RtmpCallback:
    return RtmpCallback.parse(await read_limited_body(request, MAX_FORM_BYTES))


@router.post("/publish", status_code=302, response_class=Response, openapi_extra=RTMP_FORM,
             responses={302: {"description": "Accepted: the stream is renamed to the Location (an opaque name, "
                                             "or as a fallback an internal RTMP URL it is pushed to), so the "
                                             "key never reaches HLS or recordings"},
                        **problem_responses(403, 413, 429)})
async def on_publish(request: Request, session: SessionDep, settings: SettingsDep, runtime: Runtime,
                     limiter: LimiterDep, drops: DropsDep, pulls: PullsDep,
                     transcoders: TranscodersDep, simulcasts: SimulcastsDep) -> Response:
    cb = await _callback(request)
    addr = cb.addr or None
    failure_key = f"publish-fail:ip:{addr or 'unknown'}"
    try:
        if cb.app != settings.ingest_app:
            raise Refused(f"publish to unexpected application {cb.app!r}")
        if cb.call and cb.call != "publish":
            raise Refused("not a publish callback")
        service.check_key_shape(cb.name)
        verdict = await limiter.peek(failure_key, settings.publish_failures_per_ip)
        if not verdict.allowed:
            raise Problem(429, "Too many refused publishes from this address; try again later.",
                          headers={"Retry-After": str(verdict.retry_after)})
        channel_id = await service.authorize(runtime.nats, cb.name, addr, settings.authorize_timeout_seconds)
    except Refused as exc:
        await limiter.hit(failure_key, settings.publish_failures_per_ip, settings.publish_failure_window_seconds)
        log.info("publish refused", extra={"reason": exc.reason, "clientAddr": addr, "clientId": cb.client_id})
        raise Problem(403, REFUSED) from None

    # src's pull must wait in `live` before nginx-rtmp hears the answer: the encoder sends its first
    # key frame right after it (media_gateway.ingest.source_pull)
    session_id = service.new_session_id()
    stream_name = service.source_stream_name(session_id)
    pulled = await pulls.start(session_id, stream_name)
    # the transcoder plays src before the encoder is let in, for the same reason as the pull: it
    # starts at the encoder's first key frame (media_gateway.llhls.transcoder). Before the session
    # is recorded: media.ingest.connected goes out with that commit, and a revocation acting on it
    # must find the publisher already renamed.
    transcoding = await transcoders.start(session_id)
    try:
        row, superseded = await service.open_session(session, settings, session_id=session_id,
                                                     channel_id=channel_id, key=cb.name, app=cb.app,
                                                     client_id=cb.client_id, client_addr=addr, pulled=pulled)
    except Refused as exc:
        await pulls.release(session_id, stream_name)
        log.warning("publish refused", extra={"reason": exc.reason, "channelId": channel_id})
        raise Problem(403, REFUSED) from None
    except BaseException:
        await pulls.release(session_id, stream_name)
        raise
    # after the commit: the forwarders play src like the transcoder, each in a process of its own
    simulcasts.start(row.id, channel_id)
    log.info("publish authorized", extra={"sessionId": row.id, "channelId": channel_id, "clientId": cb.client_id,
                                          "sourcePulled": pulled, "transcoding": transcoding})

    async def drop_superseded() -> None:  # after the answer: nginx-rtmp is waiting for it
        # on the node holding each (an encoder reconnecting through the balancer may land on
        # another node than the one its old connection is stuck on)
        for old in superseded:
            await drops.drop(old.node, old.relay_name, old.session_id)

    location = stream_name if pulled else service.redirect_target(settings, row.id)
    return Response(status_code=302, headers={"Location": location},
                    background=BackgroundTask(drop_superseded) if superseded else None)


@router.post("/publish_done", status_code=204, response_class=Response, openapi_extra=RTMP_FORM,
             responses=problem_responses(413))
async def on_publish_done(request: Request, session: SessionDep, settings: SettingsDep,
                          pulls: PullsDep) -> Response:
    cb = await _callback(request)
    # also a session already ended (superseded, or by the liveness worker): its pull still goes
    row = await service.find_for_callback(session, settings.ingest_node, cb.app, cb.client_id, cb.name,
                                          open_only=False, lock=True)
    if row is None:
        return Response(status_code=204)
    if await service.end_session(session, row, "encoder disconnected"):
        await session.commit()
        log.info("publish done", extra={"sessionId": row.id, "channelId": row.channel_id})
    # after the answer: dropping src's publisher closes the recording (on_record_done -> VOD)
    return Response(status_code=204, background=BackgroundTask(
        pulls.release, row.id, service.source_stream_name(row.id)))


@router.post("/update", status_code=204, response_class=Response, openapi_extra=RTMP_FORM,
             responses=problem_responses(403, 404, 413))
async def on_update(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    cb = await _callback(request)
    if cb.call != "update_publish":
        # the internal relay and transcoder play the stream; only publishers are policed here
        return Response(status_code=204)
    try:
        row = await service.find_for_callback(session, settings.ingest_node, cb.app, cb.client_id, cb.name,
                                              open_only=False)
    except Exception as exc:  # noqa: BLE001  database trouble must not cut every live stream: fail open
        log.warning("update check failed; letting the publish continue", extra={"error": repr(exc)})
        return Response(status_code=204)
    if row is None:
        raise Problem(404, "No such ingest session.")
    if row.revoked_at is not None or row.ended_at is not None:
        log.info("publish stopped on update", extra={"sessionId": row.id, "reason": row.revoke_reason
                                                      or row.end_reason})
        raise Problem(403, "This ingest session is no longer allowed.")
    try:
        await service.mark_seen(session, row.id)
        await session.commit()
    except Exception as exc:  # noqa: BLE001  as above: never cut a live stream for bookkeeping
        log.warning("update bookkeeping failed", extra={"sessionId": row.id, "error": repr(exc)})
    return Response(status_code=204)
