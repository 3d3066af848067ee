"""Bootstrap: wires settings, connections and routers into the auth app."""

from importlib import metadata

from contracts.subjects import EVENTS_STREAM
from servicekit.app import ServiceRuntime, create_app as create_service_app
from servicekit.errortracking import browser_router

from auth_service.blocks.views import router as blocks_router
from auth_service.config import Settings
from auth_service.follows.views import router as follows_router
from auth_service.keys import service as keys
from auth_service.keys.views import router as keys_router
from auth_service.oidc.views import router as oidc_router
from auth_service.passwords import Passwords, hash_concurrency, memory_limit
from auth_service.sessions.retention import avatar_sweep, prunes
from auth_service.sessions.views import router as sessions_router
from auth_service.uploads.views import router as uploads_router
from auth_service.users.views import me_router, router as users_router


def build_runtime(settings: Settings) -> ServiceRuntime:
    runtime: ServiceRuntime

    async def own_jwks() -> dict:
        # auth verifies its own tokens from its database, not over HTTP to itself
        async with runtime.db.session() as session:
            return await keys.jwks(session, settings)

    runtime = ServiceRuntime(settings, streams=[EVENTS_STREAM], uses_store=True, jwks=own_jwks)
    for prune in prunes(settings):
        runtime.add_prune(prune)
    runtime.add_sweep(avatar_sweep(settings, runtime).sweep())
    return runtime


def create_app(settings: Settings | None = None, *, configure_process: bool = True):
    settings = settings or Settings()
    app = create_service_app(
        build_runtime(settings), title="Auth service",
        description="Accounts, sessions, profiles, blocks, user follows, avatars and the JWKS.",
        routers=[sessions_router, me_router, blocks_router, follows_router, users_router, uploads_router, keys_router,
                 oidc_router,
                 # the web client's settings and its error reports (servicekit.errortracking)
                 browser_router()],
        version=metadata.version("auth-service"),
        configure_process=configure_process,
    )
    budget = settings.argon2_memory_budget_mib
    app.state.passwords = Passwords(
        settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism,
        max_concurrent=hash_concurrency(memory_kib=settings.argon2_memory_kib, memory_limit=memory_limit(),
                                        budget=budget * 1024 * 1024 if budget else None,
                                        explicit=settings.argon2_max_concurrent))
    return app
