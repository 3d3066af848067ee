from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from servicekit.problems import PROBLEM_JSON, Problem, problem_responses
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from auth_service.deps import CurrentUser, Runtime, SessionDep, SettingsDep
from auth_service.oidc import service
from auth_service.oidc.models import (
    ExchangeRequest,
    HandoffRequest,
    IdentityOut,
    LinkRequest,
    ProviderList,
    ProviderOut,
    WebhookResult,
)
from auth_service.sessions import service as sessions
from auth_service.sessions.models import AuthResult
from auth_service.users.models import UserMe

router = APIRouter(prefix="/api/auth", tags=["external sign-in"])
# where the web client finishes a sign-in: it reads the fragment, which browsers never send to a
# server, so neither the hand-off code nor a link token reaches a log
FINISH_PAGE = "/auth/login"


def _link_required(link_token: str, email: str | None) -> JSONResponse:
    # RFC 9457 extension members: what the client needs to ask the account's owner to confirm
    return JSONResponse({"type": "about:blank", "title": "Conflict", "status": 409,
                         "detail": "An account with this verified e-mail address exists; sign in to it and "
                                   "confirm the link (POST /api/auth/oidc/link).",
                         "linkToken": link_token, "email": email},
                        status_code=409, media_type=PROBLEM_JSON)


@router.get("/providers", response_model=ProviderList)
async def providers(settings: SettingsDep) -> ProviderList:
    return ProviderList(providers=[ProviderOut(name=name, display_name=p.display_name,
                                               login_url=f"/api/auth/oidc/{name}/login")
                                   for name, p in sorted(settings.oidc_providers.items())])


@router.get("/oidc/{provider}/login", status_code=302, response_class=RedirectResponse,
            responses=problem_responses(404, 422, 502))
async def login(provider: str, runtime: Runtime, settings: SettingsDep,
                next: str | None = Query(default=None, max_length=500)) -> RedirectResponse:
    config = service.provider_or_404(settings, provider)
    url = await service.start_login(runtime.redis, settings, provider, config, next)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


@router.get("/oidc/{provider}/callback", status_code=302, response_class=RedirectResponse,
            responses=problem_responses(400, 401, 404, 409, 422, 502))
async def callback(provider: str, runtime: Runtime, settings: SettingsDep, session: SessionDep,
                   state: str | None = Query(default=None, max_length=200),
                   code: str | None = Query(default=None, max_length=2000),
                   error: str | None = Query(default=None, max_length=200)) -> RedirectResponse:
    config = service.provider_or_404(settings, provider)
    if error is not None:
        if state:  # the sign-in is over either way
            await runtime.redis.delete(service.LOGIN_PREFIX + state)
        raise Problem(400, "The sign-in provider did not sign you in; start again.")
    if not state or not code:
        raise Problem(400, "The provider's answer lacks its state or code.")
    claims, next_path = await service.finish_login(runtime.redis, settings, provider, config, state, code)
    result = await service.sign_in(session, runtime.redis, settings, provider, claims)
    if result.link_token:
        await session.rollback()
        fragment = f"oidcLink={quote(result.link_token)}&provider={quote(provider)}"
    else:
        assert result.user is not None
        await session.commit()
        fragment = f"oidc={quote(await service.new_handoff(runtime.redis, settings, result.user))}"
    if next_path:
        fragment += f"&next={quote(next_path, safe='')}"
    return RedirectResponse(f"{FINISH_PAGE}#{fragment}", status_code=302, headers={"Cache-Control": "no-store"})


@router.post("/oidc/complete", response_model=AuthResult, responses=problem_responses(401, 422))
async def complete(body: HandoffRequest, runtime: Runtime, settings: SettingsDep,
                   session: SessionDep) -> AuthResult:
    """Redeem the one-time code the callback put in the page's fragment for the token pair."""
    user = await service.take_handoff(session, runtime.redis, body.code)
    pair = await sessions.issue_pair(session, settings, user)
    await session.commit()
    return AuthResult(user=UserMe.of(user), **pair.model_dump())


@router.post("/oidc/{provider}/exchange", response_model=AuthResult,
             responses=problem_responses(401, 404, 409, 422, 502))
async def exchange(provider: str, body: ExchangeRequest, runtime: Runtime, settings: SettingsDep,
                   session: SessionDep):
    config = service.provider_or_404(settings, provider)
    claims = await service.verify_id_token(config, body.id_token)
    result = await service.sign_in(session, runtime.redis, settings, provider, claims)
    if result.link_token:
        await session.rollback()
        return _link_required(result.link_token, result.email)
    assert result.user is not None
    pair = await sessions.issue_pair(session, settings, result.user)
    await session.commit()
    return AuthResult(user=UserMe.of(result.user), **pair.model_dump())


@router.post("/oidc/link", response_model=IdentityOut, status_code=201,
             responses=problem_responses(401, 403, 404, 422))
async def confirm_link(body: LinkRequest, caller: CurrentUser, runtime: Runtime,
                       session: SessionDep) -> IdentityOut:
    """The signed-in owner of the account agrees to the pending link (its token came from the
    sign-in that found their e-mail address)."""
    row = await service.confirm_link(session, runtime.redis, caller.id, body.link_token)
    await session.commit()
    return IdentityOut.of(row)


@router.get("/oidc/identities", response_model=list[IdentityOut], responses=problem_responses(401))
async def my_identities(caller: CurrentUser, session: SessionDep) -> list[IdentityOut]:
    return [IdentityOut.of(row) for row in await service.identities(session, caller.id)]


@router.post("/oidc/{provider}/webhook", response_model=WebhookResult,
             responses=problem_responses(400, 401, 404, 413))
async def webhook(provider: str, request: Request, settings: SettingsDep, session: SessionDep) -> WebhookResult:
    """Clerk's user webhooks (Svix, the Standard Webhooks signature over the raw body)."""
    config = service.provider_or_404(settings, provider)
    if config.webhook_secret is None:
        raise Problem(404, "This provider has no webhook.")
    body = await request.body()
    if len(body) > 256 * 1024:
        raise Problem(413, "The webhook body is too large.")
    headers = {k.lower(): v for k, v in request.headers.items()}
    for name in ("id", "timestamp", "signature"):  # Clerk sends the same values under svix-*
        headers.setdefault(f"webhook-{name}", headers.get(f"svix-{name}", ""))
    try:
        event = Webhook(config.webhook_secret.get_secret_value()).verify(body, headers)
    except WebhookVerificationError:
        raise Problem(401, "The webhook signature is missing, wrong or too old.") from None
    except ValueError:
        raise Problem(400, "The webhook body is not JSON.") from None
    if not isinstance(event, dict):
        raise Problem(400, "The webhook body is not a JSON object.")
    applied = await service.apply_webhook(session, provider, event)
    await session.commit()
    return WebhookResult(type=str(event.get("type", ""))[:100], applied=applied)
