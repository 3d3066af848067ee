"""one open ingest session per channel

Two publishes with one key at the same moment each ended the channel's open sessions (none yet)
and each inserted its own: two open sessions. The open-session index becomes unique, so the
database itself refuses the second; the publish path then supersedes the first and retries.

Revision ID: 0002_one_open_ingest
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = '0002_one_open_ingest'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # duplicates left by the race: the newest connection is the one streams follows, the older
    # ones end as superseded (their encoders are gone or are dropped at their next on_update)
    op.execute("""
        UPDATE ingest_sessions s SET ended_at = now(), end_reason = 'superseded by a new publish',
               next_thumbnail_at = NULL
        WHERE s.ended_at IS NULL AND EXISTS (
            SELECT 1 FROM ingest_sessions n
            WHERE n.channel_id = s.channel_id AND n.ended_at IS NULL
              AND (n.started_at, n.id) > (s.started_at, s.id))
    """)
    op.drop_index('ix_ingest_sessions_open_channel', table_name='ingest_sessions',
                  postgresql_where=sa.text('ended_at IS NULL'))
    op.create_index('ix_ingest_sessions_open_channel', 'ingest_sessions', ['channel_id'], unique=True,
                    postgresql_where=sa.text('ended_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_ingest_sessions_open_channel', table_name='ingest_sessions',
                  postgresql_where=sa.text('ended_at IS NULL'))
    op.create_index('ix_ingest_sessions_open_channel', 'ingest_sessions', ['channel_id'], unique=False,
                    postgresql_where=sa.text('ended_at IS NULL'))
