"""message tombstones: a deletion persisted before its message still deletes it

Revision ID: 0003_message_tombstones
Revises: 0002_replica_order
"""
from alembic import op
import sqlalchemy as sa

revision = '0003_message_tombstones'
down_revision = '0002_replica_order'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chat_message_tombstones',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('chat_message_tombstones')
