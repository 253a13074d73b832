"""Product policy knobs that aren't about a connection: who gets picks, how many, and how."""

from __future__ import annotations

from dagster import ConfigurableResource

from aperture_resources.settings import split_list


class PipelineConfig(ConfigurableResource):
    """APERTURE_USERS and friends."""

    users: str = ""

    def wanted_users(self) -> list[str]:
        return split_list(self.users)
