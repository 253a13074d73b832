"""Product policy knobs that aren't about a connection: who gets picks, how many and how, how long runs are
kept, how much of the catalog may vanish at once. Values arrive validated by the settings model."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from aperture_resources.settings import split_list


class PipelineConfig(ConfigurableResource):
    users: str = Field(default="", description="Users to build picks for, comma list (APERTURE_USERS)")
    recommendations_per_user: int = Field(default=12, description="APERTURE_RECOMMENDATIONS_PER_USER")
    explanations: bool = Field(default=False, description="APERTURE_EXPLANATIONS")
    run_retention_days: int = Field(default=30, description="APERTURE_RUN_RETENTION_DAYS; 0 keeps every run")
    mass_removal_threshold: float = Field(default=0.25, description="APERTURE_MASS_REMOVAL_THRESHOLD")
    user_removal_reads: int = Field(default=3, description="APERTURE_USER_REMOVAL_READS")
    users_per_run: int = Field(default=0, description="APERTURE_USERS_PER_RUN; 0 = every user in one run")
    exclude_genres: str = Field(default="", description="APERTURE_EXCLUDE_GENRES, comma list")
    exclude_tags: str = Field(default="", description="APERTURE_EXCLUDE_TAGS, comma list")
    dropped_max_share: float = Field(default=0.25, description="APERTURE_DROPPED_MAX_SHARE")
    dropped_max_episodes: int = Field(default=3, description="APERTURE_DROPPED_MAX_EPISODES")
    dropped_after_days: int = Field(default=60, description="APERTURE_DROPPED_AFTER_DAYS")

    def wanted_users(self) -> list[str]:
        return split_list(self.users)

    def excluded_genres(self) -> list[str]:
        return split_list(self.exclude_genres)

    def excluded_tags(self) -> list[str]:
        return split_list(self.exclude_tags)
