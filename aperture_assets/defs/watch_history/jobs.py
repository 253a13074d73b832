"""sync_series_watch_history: every 2 hours, one run over all users."""

from aperture_assets.wiring.jobs import asset_job, per_user_schedule

sync_series_watch_history = asset_job("sync_series_watch_history", ("series_watch_history",),
                                      "Import what every enabled user watched.")
sync_series_watch_history_schedule = per_user_schedule(
    sync_series_watch_history, "0 */2 * * *",
    "Every 2 hours, one run over all users.")
