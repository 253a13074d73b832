"""Series embeddings: one row per (series, model) with the hash of the text that was embedded.

One table for every model: the `embedding` column is an untyped pgvector `vector`, and each model gets
its own partial expression HNSW index (`(embedding::vector(d)) vector_cosine_ops WHERE model = ...`),
created by the embeddings asset the first time it sees the model. Changing the model needs no manual
step and never touches old rows.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL search_path TO aperture, public")
    op.execute(
        """
        CREATE TABLE series_embeddings (
            series_id  text NOT NULL,
            model      text NOT NULL,                 -- provider, model and dimensions
            dims       integer NOT NULL,
            text_hash  text NOT NULL,                 -- sha256 of the embedded text
            embedding  vector NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (series_id, model),
            CHECK (vector_dims(embedding) = dims)
        );
        CREATE INDEX series_embeddings_model_idx ON series_embeddings (model);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE aperture.series_embeddings")
