"""Bootstrap: wires settings, connections, routers, consumers and the NATS responders."""

from importlib import metadata

from contracts.subjects import BUCKETS, STREAMS
from servicekit.app import ServiceRuntime, create_app as create_service_app
from servicekit.retention import Sweep
from servicekit.security import KeyFetcher

from channels_service.channels import media
from channels_service.channels.responder import ChannelLookup
from channels_service.channels.views import router as channels_router
from channels_service.config import Settings
from channels_service.consumers import consumers
from channels_service.follows.views import router as follows_router
from channels_service.live.viewers import ViewerCounts
from channels_service.moderation.views import router as moderation_router
from channels_service.simulcast.responder import DestinationsResponder
from channels_service.simulcast.views import router as simulcast_router
from channels_service.providers.responder import ProviderLookup
from channels_service.streamkeys.responder import IngestAuthorizer
from channels_service.subscriptions.payments import NoPayments, PaymentProvider
from channels_service.subscriptions.renewals import Renewals
from channels_service.subscriptions.views import router as subscriptions_router
from channels_service.streamkeys.views import router as stream_keys_router
from channels_service.uploads.views import router as uploads_router
from channels_service.vods.views import router as vods_router


def build_runtime(settings: Settings, jwks: KeyFetcher | None = None,
                  payment_provider: PaymentProvider | None = None) -> ServiceRuntime:
    """`jwks` replaces fetching auth's JWKS over HTTP (tests hand in their own key);
    `payment_provider` is the subscriptions' payment hook (default: NoPayments, which allows every
    change; subscriptions/payments.py says how a real one plugs in)."""
    # channels' NATS user is the one that configures every stream and bucket of the platform
    # (contracts.access): the others wait for them at start
    runtime = ServiceRuntime(settings, streams=STREAMS, buckets=BUCKETS, uses_store=True, jwks=jwks)
    # copies first: an image a channel still shows from auth's prefix becomes its own
    runtime.add_sweep(Sweep("channel_images_adopted",
                            lambda: media.adopt_foreign_images(lambda: runtime.db, lambda: runtime.store)))
    runtime.add_sweep(media.image_sweep(settings, runtime).sweep())
    for worker in consumers(settings):
        runtime.add_worker(worker, stop=worker.stop)
    authorizer = IngestAuthorizer()
    runtime.add_worker(authorizer, stop=authorizer.stop)
    runtime.ingest_authorizer = authorizer
    lookup = ChannelLookup()
    runtime.add_worker(lookup, stop=lookup.stop)
    runtime.channel_lookup = lookup
    destinations = DestinationsResponder()
    runtime.add_worker(destinations, stop=destinations.stop)
    runtime.simulcast_destinations = destinations
    provider_lookup = ProviderLookup()
    runtime.add_worker(provider_lookup, stop=provider_lookup.stop)
    runtime.provider_lookup = provider_lookup
    viewer_counts = ViewerCounts()
    runtime.add_worker(viewer_counts, stop=viewer_counts.stop)
    runtime.viewer_counts = viewer_counts
    runtime.payment_provider = payment_provider or NoPayments()
    renewals = Renewals(settings.subscription_renewal_interval_seconds, settings.subscription_period)
    runtime.add_worker(renewals, stop=renewals.stop)
    return runtime


def create_app(settings: Settings | None = None, *, configure_process: bool = True,
               jwks: KeyFetcher | None = None, payment_provider: PaymentProvider | None = None):
    settings = settings or Settings()
    runtime = build_runtime(settings, jwks, payment_provider)
    app = create_service_app(
        runtime, title="Channels service",
        description=("Channels (slug, profile, directory), stream keys and ingest authorization, follows, "
                     "moderation (filters, moderators, bans), banners, VOD listings, simulcast destinations and "
                     "subscriptions."),
        routers=[channels_router, stream_keys_router, follows_router, moderation_router, vods_router,
                 uploads_router, simulcast_router, subscriptions_router],
        version=metadata.version("channels-service"),
        configure_process=configure_process,
    )
    app.state.ingest_authorizer = runtime.ingest_authorizer
    app.state.channel_lookup = runtime.channel_lookup
    app.state.simulcast_destinations = runtime.simulcast_destinations
    app.state.viewer_counts = runtime.viewer_counts
    app.state.provider_lookup = runtime.provider_lookup
    return app
