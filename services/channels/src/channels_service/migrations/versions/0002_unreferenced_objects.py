"""unreferenced_objects: stored banners and channel avatars no row refers to, noted when first found

Revision ID: 0002_unreferenced_objects
Revises: 0001

The retention sweep (servicekit.retention.UnreferencedObjects) deletes one once it has been
unreferenced for the grace period.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_unreferenced_objects"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unreferenced_objects",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("unreferenced_objects")
