"""What each user does not want, beside what they watched:

- `series_dislikes`: series the user marked "dislike" on the server (`UserData.Likes = false`), replaced on
  every watch-history sync like the favourites; a disliked show is never picked and pulls its neighbours down.
- `user_preferences`: an admin's per-user genre and tag exclusions (and genres let back in despite the global
  `APERTURE_EXCLUDE_GENRES`), set with `aperture user NAME ...` and applied on the next recommendations run.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute(
        """
        CREATE TABLE series_dislikes (
            user_id    text NOT NULL,
            series_id  text NOT NULL,
            PRIMARY KEY (user_id, series_id)
        );

        CREATE TABLE user_preferences (
            user_id         text PRIMARY KEY,
            exclude_genres  text[] NOT NULL DEFAULT '{}',
            include_genres  text[] NOT NULL DEFAULT '{}',   -- let back in despite APERTURE_EXCLUDE_GENRES
            exclude_tags    text[] NOT NULL DEFAULT '{}',
            updated_at      timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute("DROP TABLE user_preferences; DROP TABLE series_dislikes;")
