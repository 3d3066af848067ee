from fastapi import APIRouter, Response

from servicekit.pagination import Limit, clamp_limit
from servicekit.problems import Problem, problem_responses

from channels_service.channels import service as channels
from channels_service.deps import CallerId, PaymentProviderDep, SessionDep, SettingsDep
from channels_service.subscriptions import service
from channels_service.subscriptions.models import SubscriberPage, SubscriptionCreate, SubscriptionPublic

router = APIRouter(prefix="/api/channels", tags=["subscriptions"])

NO_STORE = {"Cache-Control": "no-store"}


def _responses(*statuses: int) -> dict:
    out = problem_responses(*statuses)
    if 402 in out:
        out[402]["description"] = "Payment Required: the payment provider refused the change; nothing was stored"
    return out


@router.get("/{channel_id}/subscription", response_model=SubscriptionPublic,
            responses=_responses(401, 404),
            summary="The caller's subscription to the channel (404 when they never subscribed)")
async def get_subscription(channel_id: str, caller: CallerId, session: SessionDep,
                           response: Response) -> SubscriptionPublic:
    channel = await channels.get_or_raise(session, channel_id)
    row = await service.get_for(session, channel.id, caller)
    if row is None:
        raise Problem(404, "You are not subscribed to this channel.")
    response.headers.update(NO_STORE)
    return service.to_public(row)


@router.post("/{channel_id}/subscription", response_model=SubscriptionPublic, status_code=200,
             responses={201: {"description": "A new subscription (or a new period after the last one expired)",
                              "content": {"application/json": {
                                  "schema": {"$ref": "#/components/schemas/SubscriptionPublic"}}}},
                        **_responses(401, 402, 404, 422, 503)},
             summary="Subscribe at a tier, or change the tier (the renewal date stays); 201 when a new "
                     "subscription began, 200 for a change or when nothing changed")
async def subscribe(channel_id: str, body: SubscriptionCreate, caller: CallerId, session: SessionDep,
                    settings: SettingsDep, provider: PaymentProviderDep, response: Response) -> SubscriptionPublic:
    channel = await channels.get_or_raise(session, channel_id)
    row, created = await service.subscribe(session, provider, channel, caller, body.tier,
                                           settings.subscription_period)
    await session.commit()
    response.status_code = 201 if created else 200
    response.headers.update(NO_STORE)
    return service.to_public(row)


@router.delete("/{channel_id}/subscription", response_model=SubscriptionPublic,
               responses=_responses(401, 402, 404, 503),
               summary="Cancel: no renewal; the subscription stays valid until its renewal date "
                       "(idempotent while it is cancelled)")
async def cancel(channel_id: str, caller: CallerId, session: SessionDep, provider: PaymentProviderDep,
                 response: Response) -> SubscriptionPublic:
    channel = await channels.get_or_raise(session, channel_id)
    row = await service.cancel(session, provider, channel, caller)
    await session.commit()
    response.headers.update(NO_STORE)
    return service.to_public(row)


@router.get("/{channel_id}/subscriptions", response_model=SubscriberPage,
            responses=_responses(400, 401, 403, 404, 422),
            summary="The channel's current subscribers, newest first, and their number (owner only)")
async def list_subscribers(channel_id: str, caller: CallerId, session: SessionDep, response: Response,
                           limit: Limit = 50, cursor: str | None = None) -> SubscriberPage:
    channel = await channels.get_or_raise(session, channel_id)
    channels.require_owner(channel, caller, "see the subscribers")
    items, next_cursor, count = await service.list_current(session, channel, clamp_limit(limit), cursor)
    response.headers.update(NO_STORE)
    return SubscriberPage(items=items, next_cursor=next_cursor, count=count)
