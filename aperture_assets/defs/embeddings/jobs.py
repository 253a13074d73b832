"""generate_series_embeddings: daily at 03:00 (and at once after the catalog changes, by automation)."""

from aperture_assets.wiring.jobs import asset_job, cron

generate_series_embeddings = asset_job(
    "generate_series_embeddings", ("series_embeddings",),
    "Embed new or changed series with the configured AI provider.", False)
generate_series_embeddings_schedule = cron(generate_series_embeddings, "0 3 * * *",
                                           "Daily at 03:00; also right after the catalog changes (automation).")
