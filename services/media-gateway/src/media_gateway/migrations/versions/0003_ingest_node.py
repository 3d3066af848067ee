"""the ingest node of each session

Ingest runs on several nodes (nginx-rtmp + the media gateway beside it); each session records the
node that holds its publisher, so drops reach that node and HLS URLs name it. Sessions from before
ran on the only ingest there was, which the manifests call `ingest-0`.

Revision ID: 0003_ingest_node
Revises: 0002_one_open_ingest
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_ingest_node'
down_revision = '0002_one_open_ingest'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('ingest_sessions', sa.Column('node', sa.String(length=63), nullable=False,
                                               server_default='ingest-0'))
    # every insert names its node; the default only filled the rows that existed
    op.alter_column('ingest_sessions', 'node', server_default=None)
    op.create_index('ix_ingest_sessions_open_node', 'ingest_sessions', ['node'],
                    postgresql_where=sa.text('ended_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_ingest_sessions_open_node', table_name='ingest_sessions',
                  postgresql_where=sa.text('ended_at IS NULL'))
    op.drop_column('ingest_sessions', 'node')
