"""The media server as a Dagster resource: one abstract resource, one subclass per server, each handing out
its own client (the shape of Dagster's project_fully_featured HN resource). `SERVERS` maps the configured
APERTURE_MEDIA_SERVER_TYPE to its resource class."""

from __future__ import annotations

from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from aperture_resources.media_server.base import MediaServerClient
from aperture_resources.media_server.emby import EmbyClient
from aperture_resources.media_server.jellyfin import JellyfinClient
from aperture_resources.settings import require_media_server, split_list


class MediaServerResource(ConfigurableResource):
    """Connection to the media server (APERTURE_MEDIA_SERVER_*); values arrive validated by the settings."""

    client_class: ClassVar[type[MediaServerClient]]

    url: str = Field(default="", description="Base URL (APERTURE_MEDIA_SERVER_URL)")
    api_key: str = Field(default="", description="API key (APERTURE_MEDIA_SERVER_API_KEY)")
    concurrency: int = Field(default=4, description="Requests in flight (APERTURE_MEDIA_SERVER_CONCURRENCY)")
    tv_libraries: str = Field(default="", description="TV libraries to sync, comma list (APERTURE_TV_LIBRARIES)")
    picks_root: str = Field(default="", description="The picks library root as the server sees it; libraries "
                            "under it are never read as catalog or history")
    timeout_seconds: float = Field(default=120.0, description="Most seconds one request may take, from send to its "
                                   "last byte (APERTURE_MEDIA_SERVER_TIMEOUT_SECONDS)")
    max_response_mb: int = Field(default=256, description="Largest response accepted "
                                 "(APERTURE_MEDIA_SERVER_MAX_RESPONSE_MB)")
    page_size: int = 1000
    retries: int = 4
    backoff_seconds: float = 0.5

    def client(self) -> MediaServerClient:
        require_media_server(self.url, self.api_key)
        return self.client_class(self.url, self.api_key, timeout=self.timeout_seconds,
                                 max_response_mb=self.max_response_mb, concurrency=self.concurrency,
                                 page_size=self.page_size, retries=self.retries, backoff=self.backoff_seconds)

    def wanted_libraries(self) -> list[str]:
        return split_list(self.tv_libraries)


class JellyfinServer(MediaServerResource):
    client_class = JellyfinClient


class EmbyServer(MediaServerResource):
    client_class = EmbyClient


SERVERS: dict[str, type[MediaServerResource]] = {"jellyfin": JellyfinServer, "emby": EmbyServer}
