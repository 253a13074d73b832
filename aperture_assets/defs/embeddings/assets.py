"""`series_embeddings`: one vector per series, incremental by text hash."""

import time

from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from aperture_assets.logic.embedding_text import series_text, text_hash
from aperture_assets.wiring import progress
from aperture_assets.wiring.automation import FOLLOW_UPSTREAM
from aperture_assets.wiring.stage import stage_body
from aperture_resources.ai import AIProviderResource, embed_batches
from aperture_resources.database import DatabaseResource
from aperture_resources.embedding_store import (
    active_series_texts,
    ensure_model_index,
    stored_dimensions,
    stored_hashes,
    write_embeddings,
)


@asset(
    automation_condition=FOLLOW_UPSTREAM,
    pool="ai_provider",
    deps=["series_catalog"],
    group_name="embeddings",
    kinds={"postgres", "pgvector"},
    description="One vector per active series for the configured model; only new or changed text is "
    "embedded.",
)
@stage_body
def series_embeddings(
    context: AssetExecutionContext, ai: AIProviderResource, database: DatabaseResource
) -> MaterializeResult:
    started = time.perf_counter()
    embedder = ai.embedder()
    model = embedder.model_key
    with database.connect() as conn:
        series = active_series_texts(conn)
        stored = stored_hashes(conn, model)
        # A model whose size is not known up front must keep the size its stored vectors (and index) have.
        embedder.dimensions = embedder.dimensions or stored_dimensions(conn, model)

    texts = {s.id: series_text(s.name, s.year, s.end_year, s.status, s.overview, s.genres, s.tags, s.network)
             for s in series}
    hashes = {sid: text_hash(text) for sid, text in texts.items()}
    pending = [sid for sid in texts if stored.get(sid) != hashes[sid]]
    # Duplicate copies of a show have identical text: embed each distinct text once.
    unique = sorted({hashes[sid]: texts[sid] for sid in pending}.items())
    vectors, failures, requests = embed_batches(
        embedder, [t for _, t in unique], embedder.batch_size, embedder.concurrency,
        lambda done, total: progress.advance("series_embeddings", "batches", done, total),
    )
    by_hash = {unique[i][0]: vec for i, vec in vectors.items()}
    failed_reasons = {unique[i][0]: reason for i, reason in failures.items()}

    rows = [(sid, hashes[sid], by_hash[hashes[sid]]) for sid in pending if hashes[sid] in by_hash]
    dims = int(rows[0][2].shape[0]) if rows else None
    with database.connect() as conn:
        if rows:
            write_embeddings(conn, model, rows)
        if dims:
            ensure_model_index(conn, model, dims)
    failed = {texts[sid].splitlines()[0]: failed_reasons[hashes[sid]] for sid in pending
              if hashes[sid] in failed_reasons}
    if failed:
        context.log.warning("%d series could not be embedded: %s", len(failed), sorted(failed)[:10])
    metadata = {
        "model": model,
        "dimensions": dims or (embedder.dimensions or 0),
        "embedded": len(rows),
        "skipped_unchanged": len(texts) - len(pending),
        "failed": len(failed),
        "provider_requests": requests,
        "distinct_texts_sent": len(unique),
        "duration_seconds": round(time.perf_counter() - started, 3),
    }
    if failed:
        metadata["failures"] = MetadataValue.json(dict(sorted(failed.items())[:50]))
    return MaterializeResult(metadata=metadata)
