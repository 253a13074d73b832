"""Product policy knobs that aren't about a connection: who gets picks, how many, and how."""

from __future__ import annotations

from dagster import ConfigurableResource

from aperture_resources.settings import ConfigError, split_list


class PipelineConfig(ConfigurableResource):
    """APERTURE_USERS, APERTURE_RECOMMENDATIONS_PER_USER, APERTURE_EXPLANATIONS, APERTURE_RUN_RETENTION_DAYS."""

    users: str = ""
    recommendations_per_user: int = 12
    explanations: str = "off"
    run_retention_days: int = 30

    def wanted_users(self) -> list[str]:
        return split_list(self.users)

    def picks_per_user(self) -> int:
        if not 1 <= self.recommendations_per_user <= 200:
            raise ConfigError("APERTURE_RECOMMENDATIONS_PER_USER must be between 1 and 200 "
                              f"(got {self.recommendations_per_user}).")
        return self.recommendations_per_user

    def explanations_on(self) -> bool:
        value = self.explanations.strip().lower()
        if value not in {"on", "off", "true", "false", "1", "0", "yes", "no", ""}:
            raise ConfigError(f"APERTURE_EXPLANATIONS must be 'on' or 'off' (got {self.explanations!r}).")
        return value in {"on", "true", "1", "yes"}

    def retention_days(self) -> int:
        if self.run_retention_days < 0:
            raise ConfigError("APERTURE_RUN_RETENTION_DAYS must be 0 (keep every run) or a number of days "
                              f"(got {self.run_retention_days}).")
        return self.run_retention_days
