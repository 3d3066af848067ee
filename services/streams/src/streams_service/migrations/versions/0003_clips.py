"""clips and the moderator projection

Revision ID: 0003_clips
Revises: 0002_vod_parts
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_clips'
down_revision = '0002_vod_parts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'clips',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('channel_id', sa.String(), nullable=False),
        sa.Column('stream_id', sa.Uuid(), nullable=False),
        sa.Column('title', sa.String(), nullable=True),
        sa.Column('status', sa.String(), nullable=False),
        sa.Column('creator', sa.String(), nullable=False),
        sa.Column('source_url', sa.String(), nullable=False),
        sa.Column('live', sa.Boolean(), nullable=False),
        sa.Column('start_seconds', sa.Float(), nullable=True),
        sa.Column('duration_seconds', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(), nullable=True),
        sa.Column('thumbnail_url', sa.String(), nullable=True),
        sa.Column('error', sa.String(), nullable=True),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('processing', 'ready', 'failed')", name='ck_clips_status'),
        sa.CheckConstraint('duration_seconds BETWEEN 5 AND 60', name='ck_clips_duration'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_clips_channel_created', 'clips', ['channel_id', 'created_at', 'id'])
    op.create_index('ix_clips_processing', 'clips', ['created_at'], postgresql_where=sa.text("status = 'processing'"))
    op.create_table(
        'streams_moderators',
        sa.Column('channel_id', sa.String(), nullable=False),
        sa.Column('user_id', sa.String(), nullable=False),
        sa.Column('present', sa.Boolean(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('channel_id', 'user_id'),
    )


def downgrade() -> None:
    op.drop_table('streams_moderators')
    op.drop_index('ix_clips_processing', table_name='clips')
    op.drop_index('ix_clips_channel_created', table_name='clips')
    op.drop_table('clips')
