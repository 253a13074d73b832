"""Media-server access: an abstract client with one subclass per server, and the Dagster resources."""

from aperture_resources.media_server.base import IncompleteReadError, MediaServerClient, MediaServerError
from aperture_resources.media_server.emby import EmbyClient
from aperture_resources.media_server.jellyfin import JellyfinClient
from aperture_resources.media_server.resource import SERVERS, EmbyServer, JellyfinServer, MediaServerResource

__all__ = [
    "SERVERS",
    "EmbyClient",
    "EmbyServer",
    "IncompleteReadError",
    "JellyfinClient",
    "JellyfinServer",
    "MediaServerClient",
    "MediaServerError",
    "MediaServerResource",
]
