import hashlib

from fastapi import APIRouter, Request, UploadFile

from servicekit.images import reencode_upload
from servicekit.problems import Problem, problem_responses
from servicekit.retention import lock_object_key

from auth_service.deps import CurrentUser, Runtime, SessionDep, SettingsDep
from auth_service.schemas import ApiModel
from auth_service.users import service as users

router = APIRouter(prefix="/api/upload", tags=["uploads"])


class UploadResult(ApiModel):
    url: str


async def read_limited(file: UploadFile, max_bytes: int) -> bytes:
    data = await file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise Problem(413, f"The file is larger than {max_bytes // (1024 * 1024)} MiB.")
    return data


# the form is read by hand (size checks first), so FastAPI cannot document it: do it here
AVATAR_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "JPEG, PNG, WebP or GIF; at most 5 MiB and 4096x4096"}}}}}}}


@router.post("/avatar", response_model=UploadResult, responses=problem_responses(401, 413, 415, 422),
             openapi_extra=AVATAR_BODY)
async def upload_avatar(request: Request, caller: CurrentUser, session: SessionDep, runtime: Runtime,
                        settings: SettingsDep) -> UploadResult:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.avatar_max_bytes + 64 * 1024:
        raise Problem(413, f"The file is larger than {settings.avatar_max_bytes // (1024 * 1024)} MiB.")
    try:
        form = await request.form(max_files=1, max_fields=5)
    except Exception:
        raise Problem(422, "Send the image as multipart/form-data in a field named 'file'.",
                      errors=[{"field": "file", "message": "not a readable form",
                               "type": "value_error"}]) from None
    file = form.get("file")
    if not isinstance(file, UploadFile) and not hasattr(file, "read"):
        raise Problem(422, "Send the image as multipart/form-data in a field named 'file'.",
                      errors=[{"field": "file", "message": "required", "type": "missing"}])
    data = await read_limited(file, settings.avatar_max_bytes)
    image = await reencode_upload(data, max_bytes=settings.avatar_max_bytes,
                                  fit_within=(settings.avatar_size_px, settings.avatar_size_px))
    user = await users.get_or_raise(session, caller.id)
    # content-addressed: a new avatar gets a new URL, so caches never serve the old one
    key = f"avatars/{user.id}/{hashlib.sha256(image.data).hexdigest()[:20]}.{image.extension}"
    # held through the commit: the sweep of replaced avatars never deletes this key in between
    await lock_object_key(session, key)
    url = await runtime.store.put(key, image.data, image.content_type)
    await users.set_avatar(session, user, url)
    await session.commit()
    return UploadResult(url=url)
