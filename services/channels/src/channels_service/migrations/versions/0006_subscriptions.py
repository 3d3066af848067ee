"""subscriptions

API.md Extensions (issue 15 item 6): one subscription per user and channel (tier BASIC|PREMIUM|VIP,
status ACTIVE|CANCELLED|EXPIRED, renewal date), and the chat filter `subscribers_only`.

Revision ID: 0006_subscriptions
Revises: 0005_channel_providers
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_subscriptions"
down_revision = "0005_channel_providers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("tier", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("renewal_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "channel_id", name="uq_channel_subscriptions_user_channel"),
        sa.CheckConstraint("tier IN ('BASIC', 'PREMIUM', 'VIP')", name="ck_channel_subscriptions_tier"),
        sa.CheckConstraint("status IN ('ACTIVE', 'CANCELLED', 'EXPIRED')", name="ck_channel_subscriptions_status"),
    )
    op.create_index("ix_channel_subscriptions_channel", "channel_subscriptions",
                    ["channel_id", "status", "created_at", "id"])
    op.create_index("ix_channel_subscriptions_due", "channel_subscriptions", ["status", "renewal_date"])
    op.add_column("channel_filters", sa.Column("subscribers_only", sa.Boolean(), nullable=False,
                                               server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("channel_filters", "subscribers_only")
    op.drop_index("ix_channel_subscriptions_due", table_name="channel_subscriptions")
    op.drop_index("ix_channel_subscriptions_channel", table_name="channel_subscriptions")
    op.drop_table("channel_subscriptions")
