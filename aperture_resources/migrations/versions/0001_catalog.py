"""Catalog: media users, libraries, series, seasons, episodes; pgvector extension.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public")
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute(
        """
        CREATE TABLE media_users (
            id               text PRIMARY KEY,          -- the server's user id
            name             text NOT NULL,
            is_disabled      boolean NOT NULL DEFAULT false,
            is_admin         boolean NOT NULL DEFAULT false,
            last_activity_at timestamptz,
            removed_at       timestamptz,
            updated_at       timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE libraries (
            id              text PRIMARY KEY,           -- VirtualFolderInfo.ItemId
            name            text NOT NULL,
            collection_type text,
            locations       text[] NOT NULL DEFAULT '{}',
            guid            text,                       -- Emby permission lists use it
            removed_at      timestamptz,
            updated_at      timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE series (
            id               text PRIMARY KEY,          -- the server's item id
            library_id       text NOT NULL,
            name             text NOT NULL,
            sort_name        text,
            original_title   text,
            year             integer,
            end_year         integer,
            overview         text,
            genres           text[] NOT NULL DEFAULT '{}',
            tags             text[] NOT NULL DEFAULT '{}',
            network          text,
            studios          text[] NOT NULL DEFAULT '{}',
            status           text,
            official_rating  text,
            community_rating real,
            poster_url       text,
            tvdb_id          text,
            tmdb_id          text,
            imdb_id          text,
            premiere_date    date,
            date_created     timestamptz,
            path             text,
            first_seen_at    timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now(),
            removed_at       timestamptz
        );
        CREATE INDEX series_library_idx ON series (library_id);
        CREATE INDEX series_tvdb_idx ON series (tvdb_id) WHERE tvdb_id IS NOT NULL;
        CREATE INDEX series_tmdb_idx ON series (tmdb_id) WHERE tmdb_id IS NOT NULL;
        CREATE INDEX series_imdb_idx ON series (imdb_id) WHERE imdb_id IS NOT NULL;

        CREATE TABLE seasons (
            id            text PRIMARY KEY,
            series_id     text NOT NULL,
            season_number integer,
            name          text,
            first_seen_at timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now(),
            removed_at    timestamptz
        );
        CREATE INDEX seasons_series_idx ON seasons (series_id);

        CREATE TABLE episodes (
            id                 text PRIMARY KEY,
            series_id          text NOT NULL,
            season_id          text,
            season_number      integer,
            episode_number     integer,
            episode_number_end integer,
            name               text,
            premiere_date      date,
            runtime_ticks      bigint,
            path               text,
            date_created       timestamptz,
            tvdb_id            text,
            tmdb_id            text,
            imdb_id            text,
            first_seen_at      timestamptz NOT NULL DEFAULT now(),
            updated_at         timestamptz NOT NULL DEFAULT now(),
            removed_at         timestamptz
        );
        CREATE INDEX episodes_series_idx ON episodes (series_id, season_number, episode_number);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE aperture.episodes, aperture.seasons, aperture.series, aperture.libraries, "
               "aperture.media_users")
