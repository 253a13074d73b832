"""Incremental watch sync: per user, the server items that were played at the last sync (with their user
data, keyed by SERVER item id, before mapping onto catalog episodes) and when the user was last synced.

`user_played_items` is the set S of the incremental read (see aperture_assets/watch_history.py); its
newest last_played_at is the watermark. Items in aperture's own picks libraries are kept too (excluded)
because the server counts them among the user's played episodes.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute(
        """
        CREATE TABLE user_watch_sync (
            user_id       text PRIMARY KEY,
            exclude_root  text NOT NULL,                -- picks root the played set was filtered with
            full_read_at  timestamptz NOT NULL,         -- last time the played list was read in full
            synced_at     timestamptz NOT NULL,         -- last sync that wrote anything
            catalog_removals text NOT NULL,             -- the catalog's episode removals that sync had seen
            catalog_version  text NOT NULL,             -- the catalog state its series progress was derived from
            last_read     text NOT NULL CHECK (last_read IN ('incremental', 'full'))
        );

        CREATE TABLE user_played_items (
            user_id           text NOT NULL,
            item_id           text NOT NULL,            -- server item id, not the catalog episode it maps onto
            play_count        integer NOT NULL,
            last_played_at    timestamptz,
            position_ticks    bigint NOT NULL DEFAULT 0,
            played_percentage real,
            series_id         text,
            season_number     integer,
            episode_number    integer,
            tvdb_id           text,
            tmdb_id           text,
            imdb_id           text,
            excluded          boolean NOT NULL DEFAULT false,  -- in a picks library, never a watch row
            PRIMARY KEY (user_id, item_id)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE aperture.user_played_items, aperture.user_watch_sync")
