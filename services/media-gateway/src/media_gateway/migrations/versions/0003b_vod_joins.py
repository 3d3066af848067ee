"""vod joins: a stream's recorded parts joined into one VOD

A stream fed by several encoder connections (a reconnect inside the window) has one recording
per connection; stream.vod_requested asks to join them, in order, and this is the durable job.

Revision ID: 0003b_vod_joins
Revises: 0002_one_open_ingest
"""
import sqlalchemy as sa
from alembic import op

revision = '0003b_vod_joins'
down_revision = '0003_ingest_node'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'vod_joins',
        sa.Column('stream_id', sa.String(), nullable=False),
        sa.Column('channel_id', sa.String(), nullable=False),
        sa.Column('parts', sa.ARRAY(sa.String()), nullable=False),
        sa.Column('status', sa.String(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('vod_url', sa.String(), nullable=True),
        sa.Column('duration_seconds', sa.Float(), nullable=True),
        sa.Column('reencoded', sa.Boolean(), nullable=True),
        sa.Column('error', sa.String(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('stream_id'),
    )
    op.create_index('ix_vod_joins_due', 'vod_joins', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_index('ix_vod_joins_due', table_name='vod_joins', postgresql_where=sa.text("status = 'pending'"))
    op.drop_table('vod_joins')
