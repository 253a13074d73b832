"""What the last complete catalog read saw, per library, so a sync can ask the server only for what changed:
the server's counts of series, seasons and episodes, when that read started (items the server saved since are
re-read) and when the last full read was.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute("""
        CREATE TABLE catalog_reads (
            library_id      text PRIMARY KEY,
            totals          jsonb NOT NULL,
            read_started_at timestamptz NOT NULL,
            full_read_at    timestamptz NOT NULL
        )""")


def downgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute("DROP TABLE catalog_reads")
