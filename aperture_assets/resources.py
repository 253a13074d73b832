"""Resources wired from the environment: a variable that is set becomes an `EnvVar` (so the UI shows
its name, never a secret's value); an unset one falls back to the documented default."""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar

from aperture_resources.ai import AIProviderResource
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerResource
from aperture_resources.pipeline_config import PipelineConfig


def env(name: str, default: Any = "") -> Any:
    return EnvVar(name) if os.environ.get(name) else default


def build_resources() -> dict[str, Any]:
    return {
        "database": DatabaseResource(
            url=env("APERTURE_DATABASE_URL"),
            data_dir=env("APERTURE_DATA_DIR", ".aperture"),
        ),
        "media_server": MediaServerResource(
            server_type=env("APERTURE_MEDIA_SERVER_TYPE", "jellyfin"),
            url=env("APERTURE_MEDIA_SERVER_URL"),
            api_key=env("APERTURE_MEDIA_SERVER_API_KEY"),
            tv_libraries=env("APERTURE_TV_LIBRARIES"),
            library_root=env("APERTURE_MEDIA_SERVER_LIBRARY_ROOT", env("APERTURE_LIBRARY_ROOT")),
        ),
        "pipeline": PipelineConfig(users=env("APERTURE_USERS")),
        "ai": AIProviderResource(
            provider=env("APERTURE_EMBEDDING_PROVIDER", "local"),
            model=env("APERTURE_EMBEDDING_MODEL"),
            dimensions=EnvVar.int("APERTURE_EMBEDDING_DIMENSIONS") if os.environ.get("APERTURE_EMBEDDING_DIMENSIONS")
            else None,
            chat_model=env("APERTURE_CHAT_MODEL"),
            openai_base_url=env("OPENAI_BASE_URL"),
            openai_api_key=env("OPENAI_API_KEY"),
            ollama_host=env("OLLAMA_HOST"),
        ),
    }
