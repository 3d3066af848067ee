from fastapi import APIRouter

from servicekit.problems import Problem, problem_responses

from auth_service.deps import CurrentUser, MaybeUser, SessionDep
from auth_service.follows import service as follows
from auth_service.users import service
from auth_service.users.models import Onboard, ProfileUpdate, UserMe, UserProfilePublic

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


@router.get("/{user_id}", response_model=UserProfilePublic, responses=problem_responses(404, 422))
async def public_user(user_id: str, caller: MaybeUser, session: SessionDep) -> UserProfilePublic:
    """A public profile by user id, or by username (``@name`` works too), with its social links and
    follow counts; ``isFollowing`` says whether the caller follows them (null when signed out)."""
    user = await service.get_by_id_or_username_or_raise(session, user_id)
    followers, following = await follows.counts(session, user.id)
    is_following = await follows.is_following(session, caller.id, user.id) if caller else None
    return UserProfilePublic.with_counts(user, followers, following, is_following)


@router.put("/{user_id}", response_model=UserMe, responses=problem_responses(401, 403, 422))
async def update_user(user_id: str, body: ProfileUpdate, caller: CurrentUser, session: SessionDep) -> UserMe:
    if user_id != caller.id:
        raise Problem(403, "You can only edit your own profile.")
    user = await service.get_or_raise(session, caller.id)
    user = await service.update_profile(session, user, body)
    await session.commit()
    return UserMe.of(user)
