"""The one configuration model: every environment variable aperture reads, declared once with its type,
default, bounds and what a valid value looks like.

The CLI, `aperture doctor`, the Dagster resources, the schedules (time zone) and the checks (threshold) all
read `load_settings()`. A wrong value is a `ConfigError` whose message is one sentence per bad variable,
naming it, so no command shows a traceback for a setting. Empty values count as unset, so a copy of
`.env.example` with blank lines means the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from aperture_resources.redaction import url_password

DEFAULT_LIBRARY_NAME = "{name}'s AI Picks - TV"


class ConfigError(Exception):
    """A setting is wrong or missing; the message names the variable to change."""


def split_list(value: str | None) -> list[str]:
    """Parse a comma list setting ("a, b,,c") into clean items."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def setting(default: Any, meaning: str, expect: str = "", env: str | None = None, **bounds: Any) -> Any:
    """A declared variable: its default, one line of meaning (README, `aperture doctor`), what a valid value
    looks like (the error sentence) and any bounds; `env` names a variable without the APERTURE_ prefix."""
    extra = {"meaning": meaning, "expect": expect}
    alias = {"validation_alias": AliasChoices(env)} if env else {}
    return Field(default=default, json_schema_extra=extra, **alias, **bounds)


class Settings(BaseSettings):
    """Environment variables (prefix APERTURE_, plus the providers' conventional names)."""

    model_config = SettingsConfigDict(env_prefix="APERTURE_", extra="ignore", populate_by_name=True,
                                      env_ignore_empty=True, validate_default=True)

    # -- media server ---------------------------------------------------------------------------------
    media_server_type: Literal["jellyfin", "emby"] = setting("jellyfin", "jellyfin or emby", "'jellyfin' or 'emby'")
    media_server_url: str = setting("", "server base URL, without /emby", "an http:// or https:// URL")
    media_server_api_key: SecretStr = setting(SecretStr(""), "API key from the server's dashboard (a secret)")
    media_server_concurrency: int = setting(4, "requests in flight to the media server at once",
                                            "a whole number from 1 to 32", ge=1, le=32)
    media_server_timeout_seconds: int = setting(
        120, "most seconds one request to the media server may take, from sending it to its last byte",
        "a whole number from 1 to 3600", ge=1, le=3600)
    media_server_max_response_mb: int = setting(256, "largest response accepted from the media server, in MB",
                                                "a whole number from 1 to 4096", ge=1, le=4096)
    tv_libraries: str = setting("", "comma list of TV library names to sync; empty = every tvshows library")
    users: str = setting("", "comma list of user names or ids to build picks for; empty = every enabled user")
    user_removal_reads: int = setting(
        3, "successful user reads in a row a user must be missing from before their picks library is removed "
        "(a disabled user's goes at once)", "a whole number from 1 to 100", ge=1, le=100)
    users_per_run: int = setting(
        0, "users per run of a scheduled per-user stage; 0 = every user in one run. Set it to spread the users "
        "over workers (Celery, Kubernetes: see deploy/README.md)", "a whole number from 0 to 100000", ge=0,
        le=100000)

    # -- storage --------------------------------------------------------------------------------------
    database_url: SecretStr = setting(SecretStr(""), "any PostgreSQL with pgvector; empty = the embedded server")
    data_dir: Path = setting(Path(".aperture"), "embedded database, Dagster home, default library root",
                             "a folder path")
    dagster_storage_url: SecretStr = setting(
        SecretStr(""), "Dagster's run storage (postgresql+psycopg2://); the CLI sets it from the database")

    # -- picks libraries ------------------------------------------------------------------------------
    library_root: str = setting("", "where aperture writes the per-user folders; empty = <data dir>/libraries")
    media_server_library_root: str = setting(
        "", "the same folder as the media server sees it; empty = APERTURE_LIBRARY_ROOT")
    library_mode: Literal["symlink", "strm"] = setting("symlink", "symlink (links to the real files) or strm",
                                                       "'symlink' or 'strm'")
    library_strm_api_key: bool = setting(False, "on = write the API key into .strm URLs (a secret on disk)",
                                         "'on' or 'off'")
    library_name: str = setting(DEFAULT_LIBRARY_NAME, "name of each user's library on the server",
                                "a name that may use {name} and nothing else in braces")

    # -- recommendations ------------------------------------------------------------------------------
    recommendations_per_user: int = setting(12, "picks per user", "a whole number from 1 to 200", ge=1, le=200)
    explanations: bool = setting(False, "on = one or two sentences per pick from the chat model", "'on' or 'off'")
    exclude_genres: str = setting("", "comma list of genres never picked for anyone (`aperture user` can let one "
                                  "back in for a user)")
    exclude_tags: str = setting("", "comma list of tags never picked for anyone")
    dropped_max_share: float = setting(
        0.25, "a show started but with at most this share of its episodes watched (and at most "
        "APERTURE_DROPPED_MAX_EPISODES, no play for APERTURE_DROPPED_AFTER_DAYS, not a favourite) counts as "
        "dropped: a weak negative, not taste", "a share from 0 to 1, such as 0.25", ge=0, le=1)
    dropped_max_episodes: int = setting(3, "most episodes watched of a show that still counts as dropped",
                                        "a whole number from 0 (never dropped) to 1000", ge=0, le=1000)
    dropped_after_days: int = setting(60, "days without a play before a barely watched show counts as dropped",
                                      "a whole number of days from 1 to 3650", ge=1, le=3650)

    # -- AI providers ---------------------------------------------------------------------------------
    embedding_provider: Literal["local", "openai", "ollama"] = setting(
        "local", "local (offline), openai (any OpenAI-compatible URL) or ollama", "'local', 'openai' or 'ollama'")
    embedding_model: str = setting("", "embedding model; empty = the provider's default")
    embedding_dimensions: int | None = setting(None, "vector size to request (OpenAI text-embedding-3 only)",
                                               "a whole number from 1 to 8192", ge=1, le=8192)
    chat_model: str = setting("", "chat model for explanations; empty = the provider's default")
    openai_base_url: str = setting("", "any OpenAI-compatible endpoint; empty = OpenAI",
                                   "an http:// or https:// URL", env="OPENAI_BASE_URL")
    openai_api_key: SecretStr = setting(SecretStr(""), "OpenAI key (a secret)", env="OPENAI_API_KEY")
    ollama_host: str = setting("", "the native Ollama API; empty = http://127.0.0.1:11434",
                               "an http:// or https:// URL", env="OLLAMA_HOST")

    # -- operations -----------------------------------------------------------------------------------
    timezone: str = setting("UTC", "IANA time zone the schedules run in", "an IANA time zone such as Europe/Berlin")
    mass_removal_threshold: float = setting(
        0.25, "share of the catalog that may vanish in one sync before downstream stages are blocked",
        "a share from 0 to 1, such as 0.25", ge=0, le=1)
    run_retention_days: int = setting(30, "finished runs older than this many days are deleted daily; 0 keeps all",
                                      "0 (keep every run) or a number of days up to 36500", ge=0, le=36500)

    @field_validator("media_server_type", "embedding_provider", "library_mode", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("media_server_url", "openai_base_url", "ollama_host")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone") from None
        return value.strip()

    @field_validator("library_name")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            named = value.format(name="x").strip()
        except (KeyError, IndexError, ValueError):
            named = ""
        if not named:
            raise ValueError("not a name template")
        return value

    # -- derived values (computed here, once) ---------------------------------------------------------
    @property
    def library_root_path(self) -> Path:
        """Where aperture writes the picks libraries (absolute)."""
        return (Path(self.library_root) if self.library_root else self.data_dir / "libraries").absolute()

    @property
    def picks_root_on_server(self) -> str:
        """The picks library root as the media server sees it; libraries under it are never read as catalog."""
        return (self.media_server_library_root or str(self.library_root_path)).rstrip("/") or "/"

    @property
    def secrets(self) -> list[str]:
        """What `redact` must cut from every log line and message: the keys and the databases' passwords."""
        return [value for value in (
            self.media_server_api_key.get_secret_value(), self.openai_api_key.get_secret_value(),
            url_password(self.database_url.get_secret_value()),
            url_password(self.dagster_storage_url.get_secret_value())) if value]

    def require_media_server(self) -> None:
        """Raise a ConfigError if the media server cannot be reached with these settings."""
        require_media_server(self.media_server_url, self.media_server_api_key.get_secret_value())

    def cross_check(self) -> Settings:
        """Rules between variables; each broken one is a sentence naming the variable to change."""
        require_strm_opt_in(self.library_mode, self.library_strm_api_key)
        if (self.embedding_provider == "openai" and not self.openai_api_key.get_secret_value()
                and not self.openai_base_url):
            raise ConfigError("OPENAI_API_KEY is not set: APERTURE_EMBEDDING_PROVIDER=openai needs a key from "
                              "platform.openai.com, or OPENAI_BASE_URL pointing at a compatible local server.")
        if self.embedding_provider == "local" and self.embedding_dimensions not in (None, 384):
            raise ConfigError("APERTURE_EMBEDDING_DIMENSIONS must be empty with the local provider (its model has "
                              f"384 dimensions; got {self.embedding_dimensions}).")
        return self


def require_media_server(url: str, api_key: str) -> None:
    """The media-server settings every stage needs, each missing one as its own sentence."""
    if not url:
        raise ConfigError("APERTURE_MEDIA_SERVER_URL is not set: point it at your Jellyfin or Emby server "
                          "(for example http://192.168.1.10:8096).")
    if not api_key:
        raise ConfigError("APERTURE_MEDIA_SERVER_API_KEY is not set: create an API key in the server's dashboard.")


def require_strm_opt_in(mode: str, key_opt_in: bool) -> None:
    """strm files play only as stream URLs that carry the API key, so strm mode needs the explicit opt-in."""
    if mode == "strm" and not key_opt_in:
        raise ConfigError(
            "APERTURE_LIBRARY_MODE=strm needs the API key inside every .strm URL (strm files hold stream URLs, "
            "which the server plays only with its key): set APERTURE_LIBRARY_STRM_API_KEY=on to accept that "
            "secret on disk, or use APERTURE_LIBRARY_MODE=symlink.")


def env_name(field: str) -> str:
    """The environment variable behind a Settings field."""
    alias = Settings.model_fields[field].validation_alias
    return alias.choices[0] if isinstance(alias, AliasChoices) else f"APERTURE_{field.upper()}"


def described(field: str) -> FieldInfo:
    return Settings.model_fields[field]


def _field(loc: str) -> str:
    """The Settings field behind an error location (a field name, or an alias such as OLLAMA_HOST)."""
    return next((f for f in Settings.model_fields if loc in (f, env_name(f))), loc)


def _sentence(error: dict) -> str:
    field = _field(str(error["loc"][0])) if error["loc"] else "?"
    if field not in Settings.model_fields:
        return f"A setting is invalid: {error['msg']}."
    extra = described(field).json_schema_extra or {}
    expect = extra.get("expect") or "valid"
    secret = described(field).annotation is SecretStr
    shown = "" if secret else f" (got {error.get('input')!r})"
    return f"{env_name(field)} must be {expect}{shown}."


def _shown_default(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return "" if value is None else str(value)


def env_example() -> str:
    """The text of `.env.example`, generated from the model (a test keeps the shipped file equal to it)."""
    lines = ["# aperture configuration: copy to .env (or export the variables) and adjust. Empty means the default.",
             "# Generated by `python -m aperture_resources.settings` from the settings model; see README.md.",
             "# Only the media server's URL and API key are required; everything else has a default."]
    for field, info in Settings.model_fields.items():
        extra = info.json_schema_extra or {}
        valid = f" ({extra['expect']})" if extra.get("expect") else ""
        lines += ["", f"# {extra['meaning']}{valid}", f"{env_name(field)}={_shown_default(info.default)}"]
    return "\n".join(lines) + "\n"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (plus `overrides`, for tests and the demo); one sentence per bad variable."""
    try:
        return Settings(**overrides).cross_check()
    except ValidationError as exc:
        raise ConfigError(" ".join(dict.fromkeys(_sentence(e) for e in exc.errors()))) from None


if __name__ == "__main__":
    print(env_example(), end="")
