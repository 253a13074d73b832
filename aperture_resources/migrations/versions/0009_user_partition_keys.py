"""Each user's Dagster partition key carries their name ("alice"), so an admin finds a user in the UI. The key
is given once, when the user is first seen, and kept when they are renamed (history and runs stay under it);
installs whose partitions were keyed by user id get new keys on the next user sync.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute("ALTER TABLE media_users ADD COLUMN partition_key text")
    op.execute("CREATE UNIQUE INDEX media_users_partition_key ON media_users (lower(partition_key))")


def downgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute("ALTER TABLE media_users DROP COLUMN partition_key")
