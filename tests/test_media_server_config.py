"""Wrong media-server settings fail with one sentence naming the variable to fix."""

import dagster
import pytest

from aperture_assets.resources import build_resources
from aperture_resources.media_server import MediaServerResource
from aperture_resources.settings import ConfigError

GOOD = {"server_type": "jellyfin", "url": "http://127.0.0.1:8096", "api_key": "k"}


@pytest.mark.parametrize(("change", "variable"), [
    ({"server_type": "plex"}, "APERTURE_MEDIA_SERVER_TYPE"),
    ({"url": ""}, "APERTURE_MEDIA_SERVER_URL is not set"),
    ({"url": "ftp://server"}, "APERTURE_MEDIA_SERVER_URL must start with http"),
    ({"api_key": ""}, "APERTURE_MEDIA_SERVER_API_KEY"),
    ({"concurrency": 0}, "APERTURE_MEDIA_SERVER_CONCURRENCY"),
    ({"concurrency": 500}, "APERTURE_MEDIA_SERVER_CONCURRENCY"),
])
def test_bad_settings_name_the_variable(change: dict, variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        MediaServerResource(**{**GOOD, **change}).client()


def concurrency_in_use() -> int:
    """The client's bound as Dagster resolves the resource from the environment (EnvVar fields)."""
    with dagster.build_resources({"media_server": build_resources()["media_server"]}) as resolved, \
            resolved.media_server.client() as client:
        return client.concurrency


def test_concurrency_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APERTURE_MEDIA_SERVER_URL", GOOD["url"])
    monkeypatch.setenv("APERTURE_MEDIA_SERVER_API_KEY", GOOD["api_key"])
    monkeypatch.setenv("APERTURE_MEDIA_SERVER_CONCURRENCY", "2")
    assert concurrency_in_use() == 2
    monkeypatch.delenv("APERTURE_MEDIA_SERVER_CONCURRENCY")
    assert concurrency_in_use() == 4
