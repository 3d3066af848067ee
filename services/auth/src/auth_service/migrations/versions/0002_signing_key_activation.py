"""signing keys: activates_at (a key is published before it signs)

Revision ID: 0002_signing_key_activation
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_signing_key_activation"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("signing_keys", sa.Column("activates_at", sa.DateTime(timezone=True),
                                            server_default=sa.text("now()"), nullable=False))
    # existing keys have been signing since they were created
    op.execute("UPDATE signing_keys SET activates_at = created_at")


def downgrade() -> None:
    op.drop_column("signing_keys", "activates_at")
