"""full_refresh: the five stages in order as one run (what `aperture run` starts)."""

from aperture_assets.wiring.jobs import STAGE_ASSETS, asset_job

full_refresh = asset_job(
    "full_refresh", STAGE_ASSETS,
    "The whole pipeline in order (catalog, embeddings, watch history, picks, libraries) in one run.")
