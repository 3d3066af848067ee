"""replica memberships ordered by event time: `present` (tombstones) and `changed_at`

Revision ID: 0002_replica_order
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002_replica_order'
down_revision = '0001'
branch_labels = None
depends_on = None

TABLES = ('chat_moderators', 'chat_bans', 'chat_follows', 'chat_blocks')


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column('present', sa.Boolean(), nullable=False, server_default=sa.true()))
        # rows from before: any event that arrives later is newer than what they reflect
        op.add_column(table, sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False,
                                       server_default=sa.text("'1970-01-01 00:00:00+00'")))
        op.alter_column(table, 'present', server_default=None)
        op.alter_column(table, 'changed_at', server_default=None)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f'DELETE FROM {table} WHERE NOT present')
        op.drop_column(table, 'changed_at')
        op.drop_column(table, 'present')
