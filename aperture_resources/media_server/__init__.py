"""Media-server access: one interface, Jellyfin and Emby implementations, and the Dagster resource."""

from aperture_resources.media_server.client import (
    EmbyClient,
    IncompleteReadError,
    JellyfinClient,
    MediaServerClient,
    MediaServerError,
)
from aperture_resources.media_server.resource import MediaServerResource

__all__ = [
    "EmbyClient",
    "IncompleteReadError",
    "JellyfinClient",
    "MediaServerClient",
    "MediaServerError",
    "MediaServerResource",
]
