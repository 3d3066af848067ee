from sqlmodel import SQLModel

import servicekit.inbox  # noqa: F401
import servicekit.outbox  # noqa: F401
import streams_service.channels.models  # noqa: F401  (register tables on the metadata)
import streams_service.clips.models  # noqa: F401
import streams_service.ingest.models  # noqa: F401
import streams_service.streams.models  # noqa: F401
from servicekit.db import run_alembic_env

run_alembic_env(SQLModel.metadata)
