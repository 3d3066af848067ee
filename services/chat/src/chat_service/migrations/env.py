from sqlmodel import SQLModel

import servicekit.inbox  # noqa: F401
import servicekit.outbox  # noqa: F401
import chat_service.messages.models  # noqa: F401  (register tables on the metadata)
import chat_service.moderation.models  # noqa: F401
import chat_service.reports.models  # noqa: F401
from servicekit.db import run_alembic_env

run_alembic_env(SQLModel.metadata)
