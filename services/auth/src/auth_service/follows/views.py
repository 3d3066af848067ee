from fastapi import APIRouter, Response
from servicekit.pagination import Limit, Page, clamp_limit
from servicekit.problems import problem_responses

from auth_service.deps import CurrentUser, SessionDep
from auth_service.follows import service
from auth_service.users import service as users
from auth_service.users.models import UserPublic

router = APIRouter(prefix="/api/users", tags=["follows"])


@router.post("/{user_id}/follow", status_code=204, response_class=Response,
             responses=problem_responses(401, 404, 422))
async def follow_user(user_id: str, caller: CurrentUser, session: SessionDep) -> Response:
    """Follow a user (by id or username); following one already followed is a no-op."""
    await service.follow(session, caller.id, user_id)
    await session.commit()
    return Response(status_code=204)


@router.delete("/{user_id}/follow", status_code=204, response_class=Response,
               responses=problem_responses(401, 404))
async def unfollow_user(user_id: str, caller: CurrentUser, session: SessionDep) -> Response:
    await service.unfollow(session, caller.id, user_id)
    await session.commit()
    return Response(status_code=204)


@router.get("/{user_id}/followers", response_model=Page[UserPublic], responses=problem_responses(400, 404, 422))
async def followers(user_id: str, session: SessionDep, limit: Limit = 50,
                    cursor: str | None = None) -> Page[UserPublic]:
    """Who follows this user, newest first."""
    user = await users.get_by_id_or_username_or_raise(session, user_id)
    items, next_cursor = await service.list_users(session, user.id, followers=True, limit=clamp_limit(limit),
                                                  cursor=cursor)
    return Page[UserPublic](items=[UserPublic.of(u) for u in items], next_cursor=next_cursor)


@router.get("/{user_id}/following", response_model=Page[UserPublic], responses=problem_responses(400, 404, 422))
async def following(user_id: str, session: SessionDep, limit: Limit = 50,
                    cursor: str | None = None) -> Page[UserPublic]:
    """Whom this user follows, newest first."""
    user = await users.get_by_id_or_username_or_raise(session, user_id)
    items, next_cursor = await service.list_users(session, user.id, followers=False, limit=clamp_limit(limit),
                                                  cursor=cursor)
    return Page[UserPublic](items=[UserPublic.of(u) for u in items], next_cursor=next_cursor)
