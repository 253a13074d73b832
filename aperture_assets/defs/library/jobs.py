"""sync_series_libraries: no schedule of its own; each user's library follows their picks by automation."""

from aperture_assets.wiring.jobs import asset_job

sync_series_libraries = asset_job(
    "sync_series_libraries", ("series_library",),
    "Write every enabled user's picks library and refresh it on the server.")
