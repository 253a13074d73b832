"""full_refresh: the five stages in the spec's Job Order as one run (what `aperture run` starts)."""

from aperture_assets.wiring.jobs import STAGE_ASSETS, asset_job

full_refresh = asset_job(
    "full_refresh", STAGE_ASSETS,
    "The whole pipeline in the spec's Job Order (catalog, embeddings, history, picks, libraries) in one run.")
