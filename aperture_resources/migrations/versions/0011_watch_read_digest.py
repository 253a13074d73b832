"""The digest of a user's last watch read, so a sync whose read is unchanged (same played set, resume,
favourite and disliked items, same catalog) writes nothing and skips the remap; and the unmatched count that
read had, for the metadata of a skipped sync. NULL digest: never skip (the last mapping asked the server).

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute("ALTER TABLE user_watch_sync ADD COLUMN read_digest text, "
               "ADD COLUMN unmatched_items integer NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute("ALTER TABLE user_watch_sync DROP COLUMN read_digest, DROP COLUMN unmatched_items")
