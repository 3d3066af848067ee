from sqlmodel import SQLModel

import channels_service.channels.models  # noqa: F401  (register tables on the metadata)
import channels_service.follows.models  # noqa: F401
import channels_service.live.models  # noqa: F401
import channels_service.moderation.models  # noqa: F401
import channels_service.profiles.models  # noqa: F401
import channels_service.simulcast.models  # noqa: F401
import channels_service.providers.models  # noqa: F401
import channels_service.streamkeys.models  # noqa: F401
import channels_service.subscriptions.models  # noqa: F401
import channels_service.vods.models  # noqa: F401
import servicekit.inbox  # noqa: F401
import servicekit.outbox  # noqa: F401
from servicekit.db import run_alembic_env

run_alembic_env(SQLModel.metadata)
