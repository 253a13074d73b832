"""The embeddings' data-quality check."""

from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from aperture_resources.ai import AIProviderResource
from aperture_resources.database import DatabaseResource
from aperture_resources.embedding_store import series_missing_vectors


@asset_check(asset="series_embeddings", description="Every active series has a vector for the active model.")
def every_series_has_a_vector(ai: AIProviderResource, database: DatabaseResource) -> AssetCheckResult:
    model = ai.model_key()
    with database.connect() as conn:
        missing = series_missing_vectors(conn, model)
    return AssetCheckResult(
        passed=not missing,
        severity=AssetCheckSeverity.WARN,
        metadata={"model": model, "missing": len(missing), "examples": ", ".join(missing[:10])},
    )
