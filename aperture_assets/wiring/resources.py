"""The resources of the code location, built from the one settings model.

Values arrive validated. A secret that came from the environment is passed as an `EnvVar`, so the UI and
the run's config show the variable's name, never its value. Resources nest: the library resource holds the
media-server resource, whose `picks_root` is the picks root as the server sees it.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar
from pydantic import SecretStr

from aperture_resources.ai import AIProviderResource
from aperture_resources.database import DatabaseResource
from aperture_resources.library.resource import LibraryResource
from aperture_resources.media_server import SERVERS
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.redaction import register
from aperture_resources.settings import Settings, env_name


def _secret(settings: Settings, field: str) -> Any:
    value: SecretStr = getattr(settings, field)
    name = env_name(field)
    return EnvVar(name) if os.environ.get(name) == value.get_secret_value() and value.get_secret_value() \
        else value.get_secret_value()


def build_resources(settings: Settings) -> dict[str, Any]:
    """The resources, and the secrets they carry registered for redaction in this process."""
    register(*settings.secrets)
    media_server = SERVERS[settings.media_server_type](
        url=settings.media_server_url,
        api_key=_secret(settings, "media_server_api_key"),
        concurrency=settings.media_server_concurrency,
        timeout_seconds=settings.media_server_timeout_seconds,
        max_response_mb=settings.media_server_max_response_mb,
        tv_libraries=settings.tv_libraries,
        picks_root=settings.picks_root_on_server,
    )
    return {
        "database": DatabaseResource(url=_secret(settings, "database_url"), data_dir=str(settings.data_dir)),
        "media_server": media_server,
        "library": LibraryResource(
            media_server=media_server,
            root=str(settings.library_root_path),
            mode=settings.library_mode,
            name_template=settings.library_name,
            strm_api_key=settings.library_strm_api_key,
        ),
        "pipeline": PipelineConfig(
            users=settings.users,
            recommendations_per_user=settings.recommendations_per_user,
            explanations=settings.explanations,
            run_retention_days=settings.run_retention_days,
            mass_removal_threshold=settings.mass_removal_threshold,
            user_removal_reads=settings.user_removal_reads,
            users_per_run=settings.users_per_run,
            exclude_genres=settings.exclude_genres,
            exclude_tags=settings.exclude_tags,
            dropped_max_share=settings.dropped_max_share,
            dropped_max_episodes=settings.dropped_max_episodes,
            dropped_after_days=settings.dropped_after_days,
        ),
        "ai": AIProviderResource(
            provider=settings.embedding_provider,
            model=settings.embedding_model,
            dimensions=settings.embedding_dimensions,
            chat_model=settings.chat_model,
            openai_base_url=settings.openai_base_url,
            openai_api_key=_secret(settings, "openai_api_key"),
            ollama_host=settings.ollama_host,
        ),
    }
