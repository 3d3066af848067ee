import media_gateway.ingest.models
import media_gateway.joins.models
import media_gateway.recordings.models
import media_gateway.webhooks.models  # noqa: F401
import servicekit.inbox
import servicekit.outbox  # noqa: F401
from servicekit.db import run_alembic_env
from sqlmodel import SQLModel

run_alembic_env(SQLModel.metadata)
