"""Twelve-factor settings: every value comes from the environment (or a .env file), typed once.

Each process runs one service, so names are unprefixed (`DATABASE_URL`, `NATS_URL`); a service
subclasses `ServiceSettings` to add its own fields.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # Fields whose defaults suit only one machine (loopback addresses): a deployment must set them.
    # tests/deploy checks that every rendered container provides each one (plus every field
    # without a default); a process that does not use one (the chat edge: no database) drops it.
    required_in_prod: ClassVar[frozenset[str]] = frozenset(
        {"database_url", "nats_url", "redis_url", "jwks_url", "public_base_url"})

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "INFO"

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5433/postgres"
    database_pool_size: int = 10
    nats_url: str = "nats://127.0.0.1:4222"
    # replicas of the JetStream streams a service creates; 3 on a 3-node cluster (deploy/k8s), where an
    # acknowledged publish is then on a majority of nodes. Raised on existing streams, never lowered.
    jetstream_replicas: int = Field(1, ge=1, le=5)
    redis_url: str = "redis://127.0.0.1:6380/0"

    # where clients reach the platform; used to build absolute links
    public_base_url: str = "http://localhost:8080"

    # access tokens are verified against the auth service's JWKS (auth itself reads its own keys)
    jwks_url: str = "http://127.0.0.1:8101/.well-known/jwks.json"
    jwt_issuer: str = "streamplatform-auth"
    jwt_audience: str = "streamplatform"
    jwt_algorithms: tuple[str, ...] = ("EdDSA",)
    jwks_cache_seconds: int = 300
    # proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated): the
    # per-IP rate limits key on the client address it gives. Locally nginx runs on loopback; in
    # Kubernetes the gateway is another pod (deploy/k8s sets the cluster's pod network)
    forwarded_allow_ips: str = "127.0.0.1"
    # an unknown kid refetches the JWKS at most this often (garbage tokens cannot hammer auth);
    # auth publishes a new key longer than this before it signs with it
    jwks_refetch_cooldown_seconds: float = 10

    # the outbox relay passes on every commit's NOTIFY; besides, it polls every outbox_poll_seconds
    # while its LISTEN connection is down and every outbox_listen_poll_seconds while it is up (a
    # safety net then: an idle service asks PostgreSQL nothing in between). servicekit/outbox.py
    outbox_poll_seconds: float = Field(1.0, gt=0)
    outbox_listen_poll_seconds: float = Field(30.0, gt=0)
    outbox_batch_size: int = 100
    # JetStream refusing one row this often while it accepts others parks the row (alert
    # OutboxRowsParked); an outage counts nothing, and failed passes back off up to 30 s
    outbox_max_attempts: int = Field(10, ge=1)

    # retention (servicekit.retention): history older than this is deleted, checked every
    # interval. The inbox row is what turns a redelivery into a duplicate, so it must outlive the
    # EVENTS stream's 7 days (the floor); dead letters are kept for an operator to replay.
    inbox_retention_days: float = Field(8, ge=7)
    dead_letters_retention_days: float = Field(30, gt=0)
    retention_interval_seconds: float = Field(3600, gt=0)
    retention_batch_size: int = Field(5000, ge=1)
    # an upload (avatar, banner) no row has referred to for this long is deleted from the object
    # store: time for projections, caches and the services that copy it to let go of it
    unreferenced_uploads_grace_days: float = Field(7, gt=0)

    # background tasks (relay, consumers, periodic jobs) that raise are started again after a
    # backoff doubling from the first value up to the second; one counts as failing in /readyz
    # until it has run this long again
    task_restart_backoff_seconds: float = Field(1.0, gt=0)
    task_restart_max_backoff_seconds: float = Field(60.0, gt=0)
    task_healthy_after_seconds: float = Field(10.0, ge=0)

    otel_exporter_otlp_endpoint: str | None = None
    metrics_enabled: bool = True

    # error tracking (servicekit.errortracking): unexpected errors go to Sentry or a self-hosted
    # GlitchTip at this DSN (`https://<public key>@<host>/<project id>`); unset, the SDK is not
    # even imported. The web client reports to the same DSN through the auth service.
    sentry_dsn: SecretStr | None = None
    sentry_environment: str = "production"
    # what events are grouped under (an image tag, a commit); unset: `<service>@<package version>`
    sentry_release: str | None = None

    @field_validator("sentry_dsn", "sentry_release", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        # `SENTRY_DSN=` (an empty line in an env file) means off, not a DSN that fails to parse
        return None if isinstance(value, str) and not value.strip() else value

    # object storage for uploads: file:///path (default) or s3://bucket (R2 and friends via the
    # S3_* variables); media_base_url is where the gateway serves what was stored
    object_store_url: str = "file://./.data/objects"
    media_base_url: str = "/media"
    s3_endpoint: str | None = None
    s3_region: str = "auto"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
