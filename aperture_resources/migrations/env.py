"""Alembic environment: migrations run on the URL the caller passes in `config.attributes`."""

from alembic import context
from sqlalchemy import create_engine, text

SCHEMA = "aperture"
MIGRATION_LOCK = 7_405_221


def run() -> None:
    engine = create_engine(context.config.attributes["url"])
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        try:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            conn.commit()
            context.configure(connection=conn, version_table_schema=SCHEMA)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()
    engine.dispose()


run()
