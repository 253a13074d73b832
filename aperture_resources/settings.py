"""The product's configuration: every environment variable aperture reads, validated in one place.

Errors a user can fix are raised as `ConfigError` with one sentence naming the variable, so the
CLI and Dagster runs show that sentence instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """A setting is wrong or missing; the message names the variable to change."""


def split_list(value: str | None) -> list[str]:
    """Parse a comma list setting ("a, b,,c") into clean items."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class Settings(BaseSettings):
    """Environment variables (prefix APERTURE_, plus the providers' conventional names)."""

    model_config = SettingsConfigDict(env_prefix="APERTURE_", extra="ignore", populate_by_name=True)

    media_server_type: Literal["jellyfin", "emby"] = "jellyfin"
    media_server_url: str = ""
    media_server_api_key: str = Field(default="", repr=False)
    tv_libraries: str = ""
    users: str = ""
    database_url: str = ""
    data_dir: Path = Path(".aperture")
    library_root: str = ""
    media_server_library_root: str = ""
    library_mode: Literal["symlink", "strm"] | None = None  # None: the mode that plays on the configured server
    library_name: str = "{name}'s AI Picks - TV"
    library_strm_api_key: bool = False  # explicit opt-in to writing the API key into .strm URLs

    embedding_provider: Literal["local", "openai", "ollama"] = "local"
    embedding_model: str = ""
    embedding_dimensions: int | None = None
    chat_model: str = ""
    openai_base_url: str = Field(default="", validation_alias=AliasChoices("OPENAI_BASE_URL"))
    openai_api_key: str = Field(default="", repr=False, validation_alias=AliasChoices("OPENAI_API_KEY"))
    ollama_host: str = Field(default="", validation_alias=AliasChoices("OLLAMA_HOST"))

    @field_validator("media_server_url")
    @classmethod
    def _url_has_scheme(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("media_server_type", "embedding_provider", "library_mode", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return (value.strip().lower() or None) if isinstance(value, str) else value

    @property
    def resolved_library_root(self) -> Path:
        return Path(self.library_root) if self.library_root else self.data_dir / "libraries"

    def require_media_server(self) -> None:
        """Raise a ConfigError if the media server cannot be reached with these settings."""
        if not self.media_server_url:
            raise ConfigError(
                "APERTURE_MEDIA_SERVER_URL is not set: point it at your Jellyfin or Emby server "
                "(for example http://192.168.1.10:8096)."
            )
        if not self.media_server_api_key:
            raise ConfigError(
                "APERTURE_MEDIA_SERVER_API_KEY is not set: create an API key in the server's dashboard."
            )


_ENV_NAMES = {
    "openai_base_url": "OPENAI_BASE_URL",
    "openai_api_key": "OPENAI_API_KEY",
    "ollama_host": "OLLAMA_HOST",
}


def env_name(field: str) -> str:
    """The environment variable behind a Settings field."""
    return _ENV_NAMES.get(field, f"APERTURE_{field.upper()}")


def load_settings() -> Settings:
    """Read the environment, turning validation errors into one sentence per bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            given = error.get("input")
            shown = "" if "key" in field else f" (got {given!r})"
            problems.append(f"{env_name(field)} is invalid: {error['msg']}{shown}.")
        raise ConfigError(" ".join(problems)) from None
