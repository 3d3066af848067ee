import hashlib

from fastapi import APIRouter, Request, UploadFile

from servicekit.images import reencode_upload
from servicekit.problems import Problem, problem_responses
from servicekit.retention import lock_object_key

from channels_service.channels import service as channels
from channels_service.deps import CallerId, Runtime, SessionDep, SettingsDep
from channels_service.schemas import ApiModel

router = APIRouter(prefix="/api/upload", tags=["uploads"])


class UploadResult(ApiModel):
    url: str


async def read_limited(file: UploadFile, max_bytes: int) -> bytes:
    data = await file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Problem(413, f"The file is larger than {max_bytes // (1024 * 1024)} MiB.")
    return data


FORM_HELP = "Send multipart/form-data with the image in 'file' and the channel id in 'channelId'."


def _form_problem(field: str) -> Problem:
    return Problem(422, FORM_HELP,
                   errors=[{"field": field, "message": "required", "type": "missing"}])


# the form is read by hand (size and permission checks first), so FastAPI cannot document it
BANNER_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "channelId"],
    "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": ("JPEG, PNG, WebP or GIF; at most 5 MiB and 4096x4096; "
                                 "stored fitted within 1920x480")},
        "channelId": {"type": "string", "description": "The channel whose banner this is (owner only)"},
    }}}}}}


@router.post("/banner", response_model=UploadResult,
             responses=problem_responses(401, 403, 404, 413, 415, 422),
             summary="Upload the channel's banner (multipart: file, channelId); owner only",
             openapi_extra=BANNER_BODY)
async def upload_banner(request: Request, caller: CallerId, session: SessionDep, runtime: Runtime,
                        settings: SettingsDep) -> UploadResult:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.banner_max_bytes + 64 * 1024:
        raise Problem(413, f"The file is larger than {settings.banner_max_bytes // (1024 * 1024)} MiB.")
    try:
        form = await request.form(max_files=1, max_fields=5)
    except Exception:
        raise Problem(422, FORM_HELP, errors=[{"field": "file", "message": "not a readable form",
                                               "type": "value_error"}]) from None
    channel_id = form.get("channelId")
    if not isinstance(channel_id, str) or not channel_id:
        raise _form_problem("channelId")
    file = form.get("file")
    if not isinstance(file, UploadFile) and not hasattr(file, "read"):
        raise _form_problem("file")
    # who may upload is settled before the image is decoded
    channel = await channels.get_or_raise(session, channel_id)
    channels.require_owner(channel, caller, "change the banner")
    data = await read_limited(file, settings.banner_max_bytes)
    image = await reencode_upload(data, max_bytes=settings.banner_max_bytes,
                                  fit_within=(settings.banner_width_px, settings.banner_height_px))
    # content-addressed: a new banner gets a new URL, so caches never serve the old one
    key = f"banners/{channel.id}/{hashlib.sha256(image.data).hexdigest()[:20]}.{image.extension}"
    # held through the commit: the sweep of replaced banners never deletes this key in between
    await lock_object_key(session, key)
    url = await runtime.store.put(key, image.data, image.content_type)
    await channels.set_banner(session, channel, url)
    await session.commit()
    return UploadResult(url=url)
