"""chat replay: the stream's start in its replica, messages by (stream, createdAt)

Revision ID: 0004_replay_offsets
Revises: 0003_message_tombstones
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_replay_offsets'
down_revision = '0003_message_tombstones'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # streams replicated before this revision keep a null start: their replay answers 409
    op.add_column('chat_streams', sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_chat_messages_stream_created', 'chat_messages', ['stream_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_chat_messages_stream_created', table_name='chat_messages')
    op.drop_column('chat_streams', 'started_at')
