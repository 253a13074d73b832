"""The Dagster resource that hands out a configured Jellyfin or Emby client."""

from __future__ import annotations

from dagster import ConfigurableResource

from aperture_resources.media_server.client import EmbyClient, JellyfinClient, MediaServerClient
from aperture_resources.settings import ConfigError

CLIENTS: dict[str, type[MediaServerClient]] = {"jellyfin": JellyfinClient, "emby": EmbyClient}


class MediaServerResource(ConfigurableResource):
    """Connection settings for the media server (APERTURE_MEDIA_SERVER_*)."""

    server_type: str = "jellyfin"
    url: str = ""
    api_key: str = ""
    timeout_seconds: float = 60.0
    concurrency: int = 4
    page_size: int = 1000
    retries: int = 4
    backoff_seconds: float = 0.5
    tv_libraries: str = ""
    library_root: str = ""

    def client(self) -> MediaServerClient:
        kind = self.server_type.strip().lower()
        if kind not in CLIENTS:
            raise ConfigError(f"APERTURE_MEDIA_SERVER_TYPE must be 'jellyfin' or 'emby', got {self.server_type!r}.")
        if not self.url:
            raise ConfigError("APERTURE_MEDIA_SERVER_URL is not set: point it at your Jellyfin or Emby server.")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"APERTURE_MEDIA_SERVER_URL must start with http:// or https:// (got {self.url!r}).")
        if not self.api_key:
            raise ConfigError("APERTURE_MEDIA_SERVER_API_KEY is not set: create an API key in the server's dashboard.")
        if not 1 <= self.concurrency <= 32:
            raise ConfigError(f"APERTURE_MEDIA_SERVER_CONCURRENCY must be between 1 and 32 (got {self.concurrency}).")
        return CLIENTS[kind](
            self.url,
            self.api_key,
            timeout=self.timeout_seconds,
            concurrency=self.concurrency,
            page_size=self.page_size,
            retries=self.retries,
            backoff=self.backoff_seconds,
        )
