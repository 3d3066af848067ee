from sqlmodel import SQLModel

import auth_service.blocks.models  # noqa: F401  (register tables on the metadata)
import auth_service.follows.models  # noqa: F401
import auth_service.keys.models  # noqa: F401
import auth_service.oidc.models  # noqa: F401
import auth_service.sessions.models  # noqa: F401
import auth_service.users.models  # noqa: F401
import servicekit.inbox  # noqa: F401
import servicekit.outbox  # noqa: F401
from servicekit.db import run_alembic_env

run_alembic_env(SQLModel.metadata)
