from fastapi import APIRouter, Response

from servicekit.pagination import Limit, Page, clamp_limit
from servicekit.problems import problem_responses

from auth_service.blocks import service
from auth_service.deps import CurrentUser, SessionDep
from auth_service.users.models import UserPublic

router = APIRouter(prefix="/api/users", tags=["blocks"])


@router.get("/me/blocks", response_model=Page[UserPublic], responses=problem_responses(400, 401, 422))
async def my_blocks(caller: CurrentUser, session: SessionDep, limit: Limit = 50,
                    cursor: str | None = None) -> Page[UserPublic]:
    users, next_cursor = await service.list_blocked(session, caller.id, clamp_limit(limit), cursor)
    return Page[UserPublic](items=[UserPublic.of(u) for u in users], next_cursor=next_cursor)


@router.post("/{user_id}/block", status_code=204, response_class=Response,
             responses=problem_responses(401, 404, 422))
async def block_user(user_id: str, caller: CurrentUser, session: SessionDep) -> Response:
    await service.block(session, caller.id, user_id)
    await session.commit()
    return Response(status_code=204)


@router.delete("/{user_id}/block", status_code=204, response_class=Response,
               responses=problem_responses(401, 404, 422))
async def unblock_user(user_id: str, caller: CurrentUser, session: SessionDep) -> Response:
    await service.unblock(session, caller.id, user_id)
    await session.commit()
    return Response(status_code=204)
