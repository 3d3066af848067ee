from fastapi import APIRouter, Response

from servicekit.problems import Problem, problem_responses

from auth_service.deps import ClientIp, LimiterDep, PasswordsDep, SessionDep, SettingsDep
from auth_service.sessions import service
from auth_service.sessions.models import AuthResult, Login, RefreshRequest
from auth_service.users import service as users
from auth_service.users.models import UserCreate, UserMe

router = APIRouter(prefix="/api/auth", tags=["sessions"])
BAD_LOGIN = "The login or password is wrong."


@router.post("/register", status_code=201, response_model=AuthResult,
             responses=problem_responses(409, 422, 429))
async def register(body: UserCreate, session: SessionDep, settings: SettingsDep, passwords: PasswordsDep,
                   limiter: LimiterDep, ip: ClientIp) -> AuthResult:
    verdict = await limiter.hit(f"register:ip:{ip}", settings.registrations_per_ip_per_hour, 3600)
    if not verdict.allowed:
        raise Problem(429, "Too many registrations from this address; try again later.",
                      headers={"Retry-After": str(verdict.retry_after)})
    user = await users.create(session, body, await passwords.hash_async(body.password))
    pair = await service.issue_pair(session, settings, user)
    await session.commit()
    return AuthResult(user=UserMe.of(user), **pair.model_dump())


@router.post("/login", response_model=AuthResult, responses=problem_responses(401, 422, 429))
async def login(body: Login, session: SessionDep, settings: SettingsDep, passwords: PasswordsDep,
                limiter: LimiterDep, ip: ClientIp) -> AuthResult:
    user = await users.find_by_login(session, body.login.strip())
    # one counter per account whichever login names it (username or email); an unknown login
    # gets its own counter, so guessing costs the same whether the account exists or not
    account_key = f"login-fail:acct:{user.id if user else body.login.strip().lower()}"
    ip_key = f"login-fail:ip:{ip}"
    window = settings.login_failure_window_seconds
    verdict = await limiter.peek(ip_key, settings.login_failures_per_ip)
    if verdict.allowed:
        # the account's attempt is counted before the password is checked (and forgiven on success):
        # checking first and counting after let a burst of parallel guesses all pass the limit
        verdict = await limiter.hit(account_key, settings.login_failures_per_account, window)
    if not verdict.allowed:
        raise Problem(429, "Too many failed logins; wait and try again.",
                      headers={"Retry-After": str(verdict.retry_after)})
    if not await passwords.verify_async(user.password_hash if user else None, body.password):
        await limiter.hit(ip_key, settings.login_failures_per_ip, window)
        raise Problem(401, BAD_LOGIN)
    assert user is not None
    await limiter.reset(account_key)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash_async(body.password)
        session.add(user)
    pair = await service.issue_pair(session, settings, user)
    await session.commit()
    return AuthResult(user=UserMe.of(user), **pair.model_dump())


@router.post("/refresh", response_model=AuthResult, responses=problem_responses(401, 422))
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> AuthResult:
    user, pair = await service.rotate(session, settings, body.refresh_token)
    await session.commit()
    return AuthResult(user=UserMe.of(user), **pair.model_dump())


@router.post("/logout", status_code=204, response_class=Response, responses=problem_responses(422))
async def logout(body: RefreshRequest, session: SessionDep) -> Response:
    await service.logout(session, body.refresh_token)
    await session.commit()
    return Response(status_code=204)
