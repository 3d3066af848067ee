"""several channels per owner

API.md Extensions: a creator may own several channels (the seed's `User.channels[]`). The unique
constraint on `channels.owner_id` goes; a plain index keeps `?owner=` and the per-owner count
(the limit, MAX_CHANNELS_PER_USER, is checked under an advisory lock per owner) fast.

Revision ID: 0003_several_channels
Revises: 0002_unreferenced_objects
"""

from alembic import op

revision = "0003_several_channels"
down_revision = "0002_unreferenced_objects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL's name for the unnamed UniqueConstraint('owner_id') of 0001
    op.drop_constraint("channels_owner_id_key", "channels", type_="unique")
    op.create_index("ix_channels_owner_id", "channels", ["owner_id"], unique=False)


def downgrade() -> None:
    # only possible while every owner has at most one channel; fails loudly otherwise
    op.drop_index("ix_channels_owner_id", table_name="channels")
    op.create_unique_constraint("channels_owner_id_key", "channels", ["owner_id"])
