"""Fail-closed bookkeeping for the picks libraries and users.

- `picks_libraries`: the server library aperture made for each user (its id, name and path), so a listing that
  comes back empty or short is recognised as suspicious instead of leading to a second library "Name2".
- `user_access`: who could see every library before aperture gave them an explicit list, so libraries the
  admin adds later are added to those users' lists on every run and they keep seeing all they did.
- `media_users.missing_reads`: how many successful user reads in a row have not listed the user; a user's
  partition and library go only when the user is disabled or missing from several reads, never on one.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute(
        """
        CREATE TABLE picks_libraries (
            user_id     text PRIMARY KEY,
            library_id  text NOT NULL,                  -- the server's ItemId
            name        text NOT NULL,
            path        text NOT NULL,                  -- as the media server sees it
            created_at  timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE user_access (
            user_id      text PRIMARY KEY,
            all_folders  boolean NOT NULL,              -- EnableAllFolders when aperture first changed the policy
            recorded_at  timestamptz NOT NULL DEFAULT now()
        );

        ALTER TABLE media_users ADD COLUMN missing_reads integer NOT NULL DEFAULT 0;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE aperture.picks_libraries, aperture.user_access")
    op.execute("ALTER TABLE aperture.media_users DROP COLUMN missing_reads")
