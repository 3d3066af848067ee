from fastapi import APIRouter

from servicekit.problems import Problem, problem_responses

from auth_service.deps import CurrentUser, SessionDep
from auth_service.users import service
from auth_service.users.models import Onboard, ProfileUpdate, UserMe, UserPublic

me_router = APIRouter(prefix="/api/auth", tags=["users"])
router = APIRouter(prefix="/api/users", tags=["users"])


@me_router.get("/user", response_model=UserMe, responses=problem_responses(401))
async def current_user(caller: CurrentUser, session: SessionDep) -> UserMe:
    user = await service.get(session, caller.id)
    if user is None:  # deleted since the token was issued
        raise Problem(401, "This account no longer exists.")
    return UserMe.of(user)


@me_router.post("/onboard", response_model=UserMe, responses=problem_responses(401, 422))
async def onboard(body: Onboard, caller: CurrentUser, session: SessionDep) -> UserMe:
    user = await service.get_or_raise(session, caller.id)
    user = await service.update_profile(session, user, body, onboard=True)
    await session.commit()
    return UserMe.of(user)


@me_router.put("/profile", response_model=UserMe, responses=problem_responses(401, 422))
async def update_profile(body: ProfileUpdate, caller: CurrentUser, session: SessionDep) -> UserMe:
    user = await service.get_or_raise(session, caller.id)
    user = await service.update_profile(session, user, body)
    await session.commit()
    return UserMe.of(user)


@router.get("/{user_id}", response_model=UserPublic, responses=problem_responses(404, 422))
async def public_user(user_id: str, session: SessionDep) -> UserPublic:
    """A public profile by user id, or by username (``@name`` works too)."""
    return UserPublic.of(await service.get_by_id_or_username_or_raise(session, user_id))


@router.put("/{user_id}", response_model=UserMe, responses=problem_responses(401, 403, 422))
async def update_user(user_id: str, body: ProfileUpdate, caller: CurrentUser, session: SessionDep) -> UserMe:
    if user_id != caller.id:
        raise Problem(403, "You can only edit your own profile.")
    user = await service.get_or_raise(session, caller.id)
    user = await service.update_profile(session, user, body)
    await session.commit()
    return UserMe.of(user)
