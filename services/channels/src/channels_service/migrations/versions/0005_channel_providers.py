"""channel providers

A channel's `provider` (local | mux | cloudflare) and, for the hosted ones, the provider's live
stream / live input with its ingest credentials (`channel_provider_streams`).

Revision ID: 0005_channel_providers
Revises: 0004_simulcast_destinations
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_channel_providers"
down_revision = "0004_simulcast_destinations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("channels", sa.Column("provider", sa.String(), nullable=False, server_default="local"))
    op.create_table(
        "channel_provider_streams",
        sa.Column("channel_id", sa.Uuid(), sa.ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("stream_id", sa.String(), nullable=False),
        sa.Column("stream_key", sa.String(), nullable=False),
        sa.Column("rtmp_url", sa.String(), nullable=False),
        sa.Column("srt_url", sa.String(), nullable=True),
        sa.Column("playback_id", sa.String(), nullable=True),
        sa.Column("playback_url", sa.String(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_channel_provider_streams_stream_id", "channel_provider_streams", ["stream_id"])


def downgrade() -> None:
    op.drop_index("ix_channel_provider_streams_stream_id", table_name="channel_provider_streams")
    op.drop_table("channel_provider_streams")
    op.drop_column("channels", "provider")
