"""Watch history: per-user episode state, series favourites and derived series progress.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute(
        """
        CREATE TABLE episode_watch_state (
            user_id           text NOT NULL,
            episode_id        text NOT NULL,          -- catalog episode the play maps onto
            played            boolean NOT NULL,
            play_count        integer NOT NULL DEFAULT 0,
            last_played_at    timestamptz,
            position_ticks    bigint NOT NULL DEFAULT 0,
            played_percentage real,
            is_favorite       boolean NOT NULL DEFAULT false,
            updated_at        timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (user_id, episode_id)
        );

        CREATE TABLE series_favorites (
            user_id    text NOT NULL,
            series_id  text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (user_id, series_id)
        );

        CREATE TABLE series_progress (
            user_id            text NOT NULL,
            series_id          text NOT NULL,
            episodes_watched   integer NOT NULL,
            episodes_available integer NOT NULL,
            percent            real NOT NULL,
            max_play_count     integer NOT NULL DEFAULT 0,
            last_watched_at    timestamptz,
            is_favorite        boolean NOT NULL DEFAULT false,
            state              text NOT NULL CHECK (state IN ('not_started', 'in_progress', 'caught_up', 'completed')),
            updated_at         timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (user_id, series_id)
        );
        CREATE INDEX series_progress_state_idx ON series_progress (user_id, state);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE aperture.series_progress, aperture.series_favorites, aperture.episode_watch_state")
