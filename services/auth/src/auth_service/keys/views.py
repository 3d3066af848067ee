from fastapi import APIRouter, Response

from auth_service.deps import SessionDep, SettingsDep
from auth_service.keys import service

router = APIRouter(tags=["keys"])


@router.get("/.well-known/jwks.json")
async def jwks(session: SessionDep, settings: SettingsDep, response: Response) -> dict:
    response.headers["Cache-Control"] = "public, max-age=300"
    return await service.jwks(session, settings)
