"""subscriptions: the subscriber replica (badges, subscribers-only) and the filter itself

Revision ID: 0005_subscriptions
Revises: 0004_replay_offsets
"""
import sqlalchemy as sa
from alembic import op

revision = '0005_subscriptions'
down_revision = '0004_replay_offsets'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'chat_subscriptions',
        sa.Column('channel_id', sa.String(), nullable=False),
        sa.Column('user_id', sa.String(), nullable=False),
        sa.Column('tier', sa.String(), nullable=False),
        sa.Column('until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('present', sa.Boolean(), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('channel_id', 'user_id'),
    )
    op.add_column('chat_filters', sa.Column('subscribers_only', sa.Boolean(), nullable=False,
                                            server_default=sa.false()))


def downgrade() -> None:
    op.drop_column('chat_filters', 'subscribers_only')
    op.drop_table('chat_subscriptions')
