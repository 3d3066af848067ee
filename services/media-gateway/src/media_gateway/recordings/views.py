import logging

from fastapi import APIRouter, Request

from servicekit.problems import Problem, problem_responses

from media_gateway.deps import RecordingsDep, SessionDep, SettingsDep, read_limited_body
from media_gateway.ingest.models import RtmpCallback
from media_gateway.ingest.views import MAX_FORM_BYTES, RTMP_FORM
from media_gateway.recordings import service
from media_gateway.recordings.models import RecordDoneAccepted

log = logging.getLogger("media_gateway.recordings")
router = APIRouter(prefix="/hooks/rtmp", tags=["ingest callbacks (internal)"])


@router.post("/record_done", status_code=202, response_model=RecordDoneAccepted, openapi_extra=RTMP_FORM,
             responses=problem_responses(404, 413))
async def on_record_done(request: Request, session: SessionDep, settings: SettingsDep,
                         recordings: RecordingsDep) -> RecordDoneAccepted:
    """Queue the finished recording; the VOD is made in the background (media.recording.ready)."""
    cb = RtmpCallback.parse(await read_limited_body(request, MAX_FORM_BYTES))
    try:
        row = await service.queue_recording(session, settings, cb.path)
    except service.BadRecording as exc:
        log.warning("record_done ignored", extra={"reason": str(exc)})
        raise Problem(404, "No such recording.") from None
    await session.commit()
    recordings.wake()
    log.info("recording queued", extra={"sessionId": row.session_id})
    return RecordDoneAccepted(session_id=row.session_id, status=row.status)
