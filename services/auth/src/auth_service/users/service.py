"""Users: creation, lookup and profile changes; every change others must know about is staged in
the outbox in the same transaction."""

import uuid

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.events.users import UserProfile
from servicekit.outbox import stage_event
from servicekit.problems import Problem

from auth_service.users.models import Onboard, ProfileUpdate, User, UserCreate

SOURCE = "auth"
# profile fields an explicit null empties
CLEARABLE = frozenset({"notification_email"})


def parse_user_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


async def get(session: AsyncSession, user_id: str | uuid.UUID) -> User | None:
    uid = user_id if isinstance(user_id, uuid.UUID) else parse_user_id(user_id)
    if uid is None:
        return None
    return await session.get(User, uid)


async def get_by_id_or_username_or_raise(session: AsyncSession, value: str) -> User:
    """A user by id, or by username (``@name`` or ``name``, exact): moderators type names."""
    user = await get(session, value)
    if user is None:
        name = value.removeprefix("@")
        user = (await session.exec(select(User).where(User.username == name))).first()
    if user is None:
        raise Problem(404, "No such user.")
    return user


async def get_or_raise(session: AsyncSession, user_id: str | uuid.UUID) -> User:
    user = await get(session, user_id)
    if user is None:
        raise Problem(404, "No such user.")
    return user


async def find_by_login(session: AsyncSession, login: str) -> User | None:
    """`login` is an email or a username; emails match case-insensitively."""
    login = login.strip()
    stmt = select(User).where(or_(func.lower(User.email) == login.lower(), User.username == login))
    return (await session.exec(stmt)).first()


async def _stage_user_event(session: AsyncSession, event_type: str, user: User) -> None:
    await stage_event(session, event_type, UserProfile(
        user_id=str(user.id), username=user.username, display_name=user.display_name, avatar=user.avatar,
    ), source=SOURCE, key=str(user.id))


async def create(session: AsyncSession, data: UserCreate, password_hash: str) -> User:
    """Insert a user and stage `user.registered`; 409 if the email or username is taken."""
    taken = (await session.exec(select(User.username, User.email).where(
        or_(func.lower(User.email) == data.email.lower(), User.username == data.username)))).all()
    if taken:
        field = "username" if any(u == data.username for u, _ in taken) else "email"
        raise Problem(409, f"That {field} is already taken.",
                      errors=[{"field": field, "message": f"{field} already taken", "type": "conflict"}])
    user = User(email=data.email, username=data.username, password_hash=password_hash,
                display_name=data.display_name or data.username)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # lost a race with a concurrent registration
        await session.rollback()
        raise Problem(409, "That email or username is already taken.") from None
    await session.refresh(user)
    await _stage_user_event(session, "user.registered", user)
    return user


async def update_profile(session: AsyncSession, user: User, changes: ProfileUpdate | Onboard,
                         *, onboard: bool = False) -> User:
    values = changes.model_dump(exclude_unset=True, mode="json")
    for field, value in values.items():
        # null leaves a required field as it is, and empties one that may be empty
        if value is not None or field in CLEARABLE:
            setattr(user, field, value)
    if onboard:
        user.onboarded = True
    session.add(user)
    await session.flush()
    await session.refresh(user)
    await _stage_user_event(session, "user.updated", user)
    return user


async def set_avatar(session: AsyncSession, user: User, url: str) -> User:
    user.avatar = url
    session.add(user)
    await session.flush()
    await session.refresh(user)
    await _stage_user_event(session, "user.updated", user)
    return user


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.exec(select(User).where(func.lower(User.email) == email.strip().lower()))).first()


# argon2 never produces this, so no password signs in to an account made by an external sign-in
NO_PASSWORD = "!external"


async def create_external(session: AsyncSession, *, email: str, username: str, display_name: str) -> User:
    """A user from an external sign-in (no password, not onboarded); stages `user.registered`."""
    user = User(email=email, username=username, password_hash=NO_PASSWORD, display_name=display_name)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent sign-in or registration took the name or address
        await session.rollback()
        raise Problem(409, "That e-mail address or username was just taken; sign in again.") from None
    await session.refresh(user)
    await _stage_user_event(session, "user.registered", user)
    return user


async def sync_external_profile(session: AsyncSession, user: User, *, display_name: str | None,
                                avatar: str | None) -> User:
    if display_name:
        user.display_name = display_name
    if avatar:
        user.avatar = avatar
    session.add(user)
    await session.flush()
    await session.refresh(user)
    await _stage_user_event(session, "user.updated", user)
    return user


async def delete(session: AsyncSession, user: User) -> None:
    # sessions, blocks and links go with it (ON DELETE CASCADE)
    await session.delete(user)
    await session.flush()
