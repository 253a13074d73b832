"""sync_series: the catalog stage's job, daily at 02:00 (and on library changes, see sensors.py)."""

from aperture_assets.wiring.jobs import asset_job, cron

sync_series = asset_job("sync_series", ("series_catalog",),
                        "Import series, seasons and episodes from the media server's TV libraries.", False)
sync_series_schedule = cron(sync_series, "0 2 * * *", "Daily at 02:00; the media_library_changes sensor also "
                                                      "starts it when a TV library changes.")
