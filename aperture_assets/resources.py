"""Resources wired from the environment: a variable that is set becomes an `EnvVar` (so the UI shows
its name, never a secret's value); an unset one falls back to the documented default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dagster import EnvVar

from aperture_resources.ai import AIProviderResource
from aperture_resources.database import DatabaseResource
from aperture_resources.library.resource import DEFAULT_NAME, LibraryResource
from aperture_resources.media_server import MediaServerResource
from aperture_resources.pipeline_config import PipelineConfig


def env(name: str, default: Any = "") -> Any:
    return EnvVar(name) if os.environ.get(name) else default


def build_resources() -> dict[str, Any]:
    # Where the picks libraries are by default; the catalog and history syncs skip libraries under it.
    default_root = str(Path(os.environ.get("APERTURE_DATA_DIR") or ".aperture").absolute() / "libraries")
    return {
        "database": DatabaseResource(
            url=env("APERTURE_DATABASE_URL"),
            data_dir=env("APERTURE_DATA_DIR", ".aperture"),
        ),
        "media_server": MediaServerResource(
            server_type=env("APERTURE_MEDIA_SERVER_TYPE", "jellyfin"),
            url=env("APERTURE_MEDIA_SERVER_URL"),
            api_key=env("APERTURE_MEDIA_SERVER_API_KEY"),
            concurrency=EnvVar.int("APERTURE_MEDIA_SERVER_CONCURRENCY")
            if os.environ.get("APERTURE_MEDIA_SERVER_CONCURRENCY") else 4,
            tv_libraries=env("APERTURE_TV_LIBRARIES"),
            library_root=env("APERTURE_MEDIA_SERVER_LIBRARY_ROOT", env("APERTURE_LIBRARY_ROOT", default_root)),
        ),
        "library": LibraryResource(
            root=env("APERTURE_LIBRARY_ROOT"),
            server_root=env("APERTURE_MEDIA_SERVER_LIBRARY_ROOT"),
            data_dir=env("APERTURE_DATA_DIR", ".aperture"),
            mode=env("APERTURE_LIBRARY_MODE"),
            name_template=env("APERTURE_LIBRARY_NAME", DEFAULT_NAME),
            strm_api_key=env("APERTURE_LIBRARY_STRM_API_KEY", "off"),
        ),
        "pipeline": PipelineConfig(
            users=env("APERTURE_USERS"),
            recommendations_per_user=EnvVar.int("APERTURE_RECOMMENDATIONS_PER_USER")
            if os.environ.get("APERTURE_RECOMMENDATIONS_PER_USER") else 12,
            explanations=env("APERTURE_EXPLANATIONS", "off"),
            run_retention_days=EnvVar.int("APERTURE_RUN_RETENTION_DAYS")
            if os.environ.get("APERTURE_RUN_RETENTION_DAYS") else 30,
        ),
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
