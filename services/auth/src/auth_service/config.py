from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, StringConstraints, field_validator
from servicekit.settings import ServiceSettings

# only asymmetric algorithms: an HMAC one would let anyone holding the public JWKS forge tokens
ALLOWED_ID_TOKEN_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                         "ES256", "ES384", "ES512", "EdDSA"})


class OidcProvider(BaseModel):
    """One external sign-in provider (OpenID Connect), configured by environment."""

    issuer: str  # exactly as the provider's discovery document and tokens spell it
    client_id: str
    client_secret: SecretStr
    display_name: str
    # Clerk's (Svix's) webhook signing secret, `whsec_...`; unset: no webhook for this provider
    webhook_secret: SecretStr | None = None
    # the ID tokens' algorithms this provider may use; anything else (and `none`) is refused
    algorithms: list[str] = ["RS256"]
    scopes: str = "openid email profile"

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_format(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from standardwebhooks.webhooks import Webhook

            try:  # refused at start-up rather than as a 500 on the first webhook
                Webhook(value.get_secret_value())
            except ValueError:  # binascii.Error is one
                raise ValueError("webhook_secret must be a Standard Webhooks secret (whsec_<base64>)") from None
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        if not value or set(value) - ALLOWED_ID_TOKEN_ALGORITHMS:
            raise ValueError(f"algorithms must be among {sorted(ALLOWED_ID_TOKEN_ALGORITHMS)}")
        return value


ProviderName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class Settings(ServiceSettings):
    service_name: str = "auth"
    port: int = 8101

    access_token_ttl_seconds: int = 900  # API.md: at most 15 minutes
    refresh_token_ttl_days: int = 30
    # an expired refresh token is refused whether its row exists or not (reuse detection only
    # applies to live ones), so its row is deleted this long after expiry (sessions/retention.py)
    refresh_token_retention_days: float = 7
    # a signing key signs for this long, then stays published until every token it signed expired
    signing_key_rotation_days: int = 30
    # a new key is published in the JWKS this long before it signs, so every verifier can learn it
    # first: longer than the verifiers' JWKS refetch cool-down (10 s in servicekit.security)
    signing_key_publish_lead_seconds: float = 30
    # encrypts private signing keys at rest in the database when set
    signing_key_passphrase: SecretStr | None = None

    # argon2id; defaults are OWASP's first recommended profile (m=46 MiB, t=1, p=1)
    argon2_memory_kib: int = 47104
    argon2_time_cost: int = 1
    argon2_parallelism: int = 1
    # hashes at once (each holds argon2_memory_kib): unset, as many as fit in argon2_memory_budget_mib,
    # itself by default half the container's memory limit (cgroup memory.max); 4 when there is none
    argon2_max_concurrent: int | None = Field(default=None, ge=1)
    argon2_memory_budget_mib: int | None = Field(default=None, ge=1)

    login_failures_per_account: int = 10
    login_failures_per_ip: int = 100
    login_failure_window_seconds: int = 60
    registrations_per_ip_per_hour: int = 1000

    avatar_max_bytes: int = 5 * 1024 * 1024
    avatar_size_px: int = 512

    # external sign-in: OIDC_PROVIDERS='{"clerk": {"issuer": "...", "client_id": "...",
    # "client_secret": "...", "display_name": "Clerk"}}' (docs/operations.md); the callback is
    # {public_base_url}/api/auth/oidc/{name}/callback
    oidc_providers: dict[ProviderName, OidcProvider] = Field(default_factory=dict)
    # an unfinished sign-in (state, nonce, PKCE verifier) is forgotten after this long
    oidc_login_ttl_seconds: int = 600
    # the one-time code that hands the browser its token pair after the callback
    oidc_handoff_ttl_seconds: int = 60
    # how long a pending link (verified e-mail of an existing account) waits for its owner
    oidc_link_ttl_seconds: int = 900
