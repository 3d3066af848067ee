"""users.notification_email: an e-mail address or null, as the contract says (was a flag)

Revision ID: 0003_notification_email_address
Revises: 0002_signing_key_activation

Existing choices are kept: a user with notifications on (true) keeps receiving them, at the
account's address; off (false) becomes null, "no notification e-mail". New accounts start with
null (the contract's `notificationEmail String?` has no default), so nobody is mailed unasked.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_notification_email_address"
down_revision = "0002_signing_key_activation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("users", "notification_email", nullable=True)
    op.alter_column("users", "notification_email", type_=sa.String(),
                    postgresql_using="CASE WHEN notification_email THEN email END")


def downgrade() -> None:
    op.alter_column("users", "notification_email", type_=sa.Boolean(),
                    postgresql_using="notification_email IS NOT NULL")
    op.alter_column("users", "notification_email", nullable=False)
