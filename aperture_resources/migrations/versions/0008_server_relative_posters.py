"""Nothing stored depends on the media server's address: the catalog keeps each poster's path relative to the
server's base URL (`/Items/<id>/Images/Primary?...`, `/emby/...` on Emby), so a server that changes host or
port, or moves behind a reverse proxy, changes no row. Stored absolute URLs lose their scheme and host.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute("ALTER TABLE series RENAME COLUMN poster_url TO poster_path")
    op.execute(r"UPDATE series SET poster_path = regexp_replace(poster_path, '^https?://[^/]+', '') "
               r"WHERE poster_path ~ '^https?://'")


def downgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute("ALTER TABLE series RENAME COLUMN poster_path TO poster_url")
