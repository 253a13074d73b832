"""Recommendations: one row per (user, run) with its parameters, and the ranked picks of that run.

The latest run per user is the current list (`latest_recommendations`); older runs are kept for
comparison and pruned by the asset (it keeps the newest few per user).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute(
        """
        CREATE TABLE recommendation_runs (
            id            bigserial PRIMARY KEY,
            user_id       text NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            model         text NOT NULL,              -- embedding model key the scores used
            parameters    jsonb NOT NULL,             -- weights, k, lambda, count, explanations on/off
            cold_start    boolean NOT NULL DEFAULT false,
            dagster_run_id text
        );
        CREATE INDEX recommendation_runs_user_idx ON recommendation_runs (user_id, created_at DESC, id DESC);

        CREATE TABLE recommendations (
            run_id      bigint NOT NULL REFERENCES recommendation_runs (id) ON DELETE CASCADE,
            rank        integer NOT NULL CHECK (rank > 0),
            series_id   text NOT NULL,
            score       real NOT NULL,
            components  jsonb NOT NULL,               -- content, collaborative, rating, popularity
            evidence    jsonb NOT NULL,               -- [{series_id, name, similarity}] watched shows behind it
            explanation text,
            PRIMARY KEY (run_id, rank),
            UNIQUE (run_id, series_id)
        );

        CREATE VIEW latest_recommendations AS
        SELECT r.user_id, r.id AS run_id, r.created_at, r.cold_start, p.rank, p.series_id, p.score,
               p.components, p.evidence, p.explanation
        FROM (SELECT DISTINCT ON (user_id) * FROM recommendation_runs ORDER BY user_id, created_at DESC, id DESC) r
        JOIN recommendations p ON p.run_id = r.id;
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW aperture.latest_recommendations")
    op.execute("DROP TABLE aperture.recommendations, aperture.recommendation_runs")
