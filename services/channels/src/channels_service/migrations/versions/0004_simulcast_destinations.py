"""simulcast destinations

API.md Extensions (issue 16 item 1): RTMP(S) destinations per channel; the stream key is stored
only as Fernet ciphertext, the state is what the forwarding ingest node last reported.

Revision ID: 0004_simulcast_destinations
Revises: 0003_several_channels
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_simulcast_destinations"
down_revision = "0003_several_channels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_simulcast_destinations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("key_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("key_suffix", sa.String(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_channel_simulcast_destinations_channel_id", "channel_simulcast_destinations",
                    ["channel_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_channel_simulcast_destinations_channel_id", table_name="channel_simulcast_destinations")
    op.drop_table("channel_simulcast_destinations")
