"""Shared set-up for the robustness suite: run the whole pipeline on a sample server through Dagster, and take a
full, comparable snapshot of everything aperture stores (timestamps, run ids and server ports left out)."""

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

from aperture_dev.fake_ai_server import FakeAIServer
from aperture_dev.sample_server import SampleServer
from dagster import DagsterInstance, materialize

from aperture_assets.defs.catalog.assets import series_catalog
from aperture_assets.defs.embeddings.assets import series_embeddings
from aperture_assets.defs.library.assets import series_library
from aperture_assets.defs.recommendations.assets import series_recommendations
from aperture_assets.defs.watch_history.assets import series_watch_history
from aperture_assets.wiring.dagster_internals import partition_range_tags
from aperture_assets.wiring.partitions import apply_user_partitions, users_partitions
from aperture_resources.ai import AIProviderResource
from aperture_resources.database import DatabaseResource
from aperture_resources.library.resource import LibraryResource
from aperture_resources.pipeline_config import PipelineConfig
from tests.conftest import media_resource

MEDIA_KEY = "media-secret-Zq8vW3"  # distinctive, so a leak is found by a plain substring search
AI_KEY = "sk-ai-secret-Kp4nR7"
STAGES = ("catalog", "embeddings", "history", "recommendations", "library")
ASSETS = {"catalog": series_catalog, "embeddings": series_embeddings, "history": series_watch_history,
          "recommendations": series_recommendations, "library": series_library}
PER_USER = {"history", "recommendations", "library"}
_URL = re.compile(r"https?://127\.0\.0\.1:\d+")


def start_server(data: dict, mode: str = "jellyfin", **kwargs) -> SampleServer:
    return SampleServer(copy.deepcopy(data), mode=mode, api_key=MEDIA_KEY, record=False, **kwargs).start()


def fake_ai() -> FakeAIServer:
    return FakeAIServer(api_key=AI_KEY).start()


def ai_resource(fake: FakeAIServer, **overrides) -> AIProviderResource:
    params = {"provider": "openai", "model": "text-embedding-3-small", "dimensions": 256,
              "openai_base_url": fake.openai_base_url, "openai_api_key": AI_KEY, "retries": 3,
              "backoff_seconds": 0.01, "timeout_seconds": 5.0, **overrides}
    return AIProviderResource(**params)


@dataclass
class World:
    """One pipeline set-up: a server, a fake AI provider, a database, a library root and a Dagster instance."""

    server: SampleServer
    ai: FakeAIServer
    database: DatabaseResource
    root: Path
    instance: DagsterInstance
    media: dict = field(default_factory=dict)  # overrides for the media-server resource
    ai_options: dict = field(default_factory=dict)
    library: dict = field(default_factory=dict)  # overrides for the library resource (root, name_template, ...)

    def resources(self) -> dict:
        media = media_resource(self.server, **{"api_key": MEDIA_KEY, "page_size": 50, **self.media})
        return {"media_server": media, "database": self.database, "pipeline": PipelineConfig(),
                "ai": ai_resource(self.ai, **self.ai_options),
                "library": LibraryResource(media_server=media, **{"root": str(self.root), **self.library})}

    def run(self, stages: tuple[str, ...] = STAGES, checks: tuple = ()) -> dict:
        """Sync users to partitions (as `aperture run` does), then each stage as its own Dagster run (with
        `checks`, asset checks to run with it), in the spec's order, stopping at the first failure. Returns
        {stage: ExecuteInProcessResult}."""
        res = self.resources()
        enabled = set(apply_user_partitions(self.instance, res["media_server"], res["database"], res["pipeline"]))
        # a range runs over the partitions in the instance's order (a re-added user comes last), as the CLI does
        keys = [k for k in self.instance.get_dynamic_partitions(users_partitions.name) if k in enabled]
        results = {}
        for stage in stages:
            tags = partition_range_tags(keys[0], keys[-1]) if stage in PER_USER else {}
            result = materialize([ASSETS[stage], *checks], resources=res, instance=self.instance, tags=tags,
                                 raise_on_error=False)
            results[stage] = result
            if not result.success:
                break
        return results


def ok(results: dict) -> bool:
    return all(r.success for r in results.values()) and len(results) == len(STAGES)


def failure_messages(results: dict) -> list[str]:
    """Every step failure's messages (the whole cause chain), as the UI shows them."""
    out = []
    for result in results.values():
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data:
                error = event.step_failure_data.error
                while error is not None:
                    out.append(error.message)
                    error = error.cause
                user = event.step_failure_data.user_failure_data
                for value in (user.metadata.values() if user and user.metadata else []):
                    out.append(str(value.value))
    return out


def _clean(value):
    if isinstance(value, str):
        return _URL.sub("SERVER", value)
    if isinstance(value, list | tuple):
        return tuple(_clean(v) for v in value)
    if isinstance(value, float):
        return round(value, 4)
    return value


SNAPSHOT_QUERIES = {
    "libraries": "SELECT id, name, collection_type, locations, guid, removed_at IS NOT NULL FROM libraries",
    "series": "SELECT id, library_id, name, sort_name, original_title, year, end_year, overview, genres, tags, "
              "network, studios, status, official_rating, community_rating, poster_path, tvdb_id, tmdb_id, imdb_id, "
              "premiere_date, date_created, path, removed_at IS NOT NULL FROM series",
    "seasons": "SELECT id, series_id, season_number, name, removed_at IS NOT NULL FROM seasons",
    "episodes": "SELECT id, series_id, season_id, season_number, episode_number, episode_number_end, name, "
                "premiere_date, runtime_ticks, path, date_created, tvdb_id, tmdb_id, imdb_id, "
                "removed_at IS NOT NULL FROM episodes",
    "episode_watch_state": "SELECT user_id, episode_id, played, play_count, last_played_at, position_ticks, "
                           "played_percentage, is_favorite FROM episode_watch_state",
    "series_progress": "SELECT user_id, series_id, episodes_watched, episodes_available, percent, max_play_count, "
                       "last_watched_at, is_favorite, state FROM series_progress",
    "series_favorites": "SELECT user_id, series_id FROM series_favorites",
    "series_embeddings": "SELECT series_id, model, dims, text_hash FROM series_embeddings",
    "latest_recommendations": "SELECT user_id, rank, series_id FROM latest_recommendations",
}


def snapshot(database: DatabaseResource) -> dict[str, list[tuple]]:
    """All rows of every table aperture owns, sorted, without timestamps of our own writes or run ids."""
    with database.connect() as conn:
        return {table: sorted((tuple(_clean(v) for v in row) for row in conn.execute(query)), key=repr)
                for table, query in SNAPSHOT_QUERIES.items()}


def library_tree(root: Path) -> dict[str, str]:
    """Every file under the library root (relative path -> symlink target or text content), ports masked."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "-> " + str(path.readlink())
        elif path.is_file() and not path.name.startswith("."):
            out[rel] = _clean(path.read_text(errors="replace"))
    return out


def server_libraries(server: SampleServer) -> list[str]:
    return sorted(f["Name"] for f in server.state.folders)


def diff(a: dict, b: dict) -> dict:
    """Tables whose rows differ, with a few example rows from each side (for readable assertion errors)."""
    out = {}
    for table in a:
        only_a = sorted(set(a[table]) - set(b[table]), key=repr)
        only_b = sorted(set(b[table]) - set(a[table]), key=repr)
        if only_a or only_b or len(a[table]) != len(b[table]):
            out[table] = {"only_first": only_a[:3], "only_second": only_b[:3], "sizes": (len(a[table]), len(b[table]))}
    return out
