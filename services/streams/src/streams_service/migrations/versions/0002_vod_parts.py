"""a stream's VOD joins all its parts

A stream fed by several encoder connections asks the media gateway once to join their
recordings (stream.vod_requested); this remembers when, so it is asked once and the sweeper can
fall back to the longest part when the answer never comes.

Revision ID: 0002_vod_parts
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002_vod_parts'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('streams', sa.Column('vod_requested_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('streams', 'vod_requested_at')
