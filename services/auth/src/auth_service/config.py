from pydantic import Field, SecretStr

from servicekit.settings import ServiceSettings


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
