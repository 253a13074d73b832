"""generate_series_recommendations: weekly, Monday 04:00, one run over all users; evaluate_recommendations,
the quality report, half an hour later."""

from aperture_assets.wiring.jobs import asset_job, cron, per_user_schedule

generate_series_recommendations = asset_job(
    "generate_series_recommendations", ("series_recommendations",),
    "Rank fresh picks for every enabled user.")
generate_series_recommendations_schedule = per_user_schedule(
    generate_series_recommendations, "0 4 * * 1",
    "Weekly, Monday 04:00, one run over all users; each user's library "
    "follows by automation.")

evaluate_recommendations = asset_job("evaluate_recommendations", ("recommendation_quality",),
                                     "Offline hold-out evaluation of the recommender against simple baselines.", False)
evaluate_recommendations_schedule = cron(evaluate_recommendations, "30 4 * * 1",
                                         "Weekly quality report, after the recommendations.")
