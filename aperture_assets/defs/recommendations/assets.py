"""`series_recommendations[user]`: the spec's generate-series-recommendations, one partition per user.

The taste profile is rebuilt from episode history on every run (never cached). Candidates come from
pgvector nearest neighbours of the user's watched shows, shows co-watched by other users, and the
server's most popular shows; `recommend` ranks them. Each run is stored with its parameters, so the
latest list per user is well defined; older runs beyond a few are pruned.

What a user may open is read from the server on every run (their policy, the libraries, the rating scale):
a pick is always a copy they can play, and a failed read stops the stage rather than picking blind. Their
dislikes, the shows they dropped and the admin's exclusions (global and per user) apply too; the metadata
counts the candidates each rule removed.
"""


import time
from collections import defaultdict
from datetime import UTC, datetime

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from aperture_assets.logic.explanations import explain, taste_evidence, template
from aperture_assets.logic.recommend import REMOVAL_RULES, Catalog, History, Params, Result, Rules, recommend, taste
from aperture_assets.logic.rules import access_verdicts, user_rules
from aperture_assets.logic.scoring import Watched
from aperture_assets.wiring import progress
from aperture_assets.wiring.automation import NEW_USER
from aperture_assets.wiring.partitions import read_users, run_users, users_partitions
from aperture_assets.wiring.stage import stage_body
from aperture_resources.ai import AIProviderResource
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerResource
from aperture_resources.media_server.access import SeriesCopy, ServerAccess, read_access
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.preference_store import effective_exclusions, load_preferences
from aperture_resources.recommendation_store import (
    as_matrix,
    count_without_vector,
    disliked_shows,
    nearest_shows,
    prune_runs,
    save_run,
    show_copies,
    shows,
    user_histories,
)

KEEP_RUNS = 5
NEIGHBOURS = 100
POPULAR_POOL = 50


def load_world(conn, model: str) -> tuple[Catalog, dict[str, list[History]]]:
    """Every show with a vector for `model`, and every enabled user's history by show."""
    rows = shows(conn, model)
    catalog = Catalog(
        shows=[r.show for r in rows], series_ids=[r.series_id for r in rows], names=[r.name for r in rows],
        ratings=[r.community_rating for r in rows], genres=[list(r.genres or []) for r in rows],
        vectors=as_matrix([r.embedding for r in rows]), tags=[list(r.tags or []) for r in rows],
    )
    histories: dict[str, list[History]] = defaultdict(list)
    for h in user_histories(conn):
        watched = Watched(h.show, h.episodes_watched, h.episodes_available, h.max_play_count, h.is_favorite,
                          h.last_watched_at)
        histories[h.user_id].append(History(h.show, h.state, watched, h.started_at))
    catalog.count_watchers(histories)
    return catalog, dict(histories)


def candidate_pool(conn, model: str, catalog: Catalog, mine: dict[str, float],
                   others: dict[str, dict[str, float]]) -> set[str]:
    """pgvector neighbours of the user's shows, shows co-watched by users who share a show, and the
    server's most popular shows."""
    shows = [s for s in mine if s in catalog.index]
    anchors = [catalog.series_ids[catalog.index[s]] for s in shows]
    dims = catalog.vectors.shape[1] if catalog.vectors.size else 0
    pool = nearest_shows(conn, model, dims, anchors, NEIGHBOURS) if dims else set()
    for weights in others.values():
        if weights.keys() & set(shows):
            pool |= weights.keys()
    popular = sorted(range(len(catalog.shows)), key=lambda i: -catalog.popularity[i])[:POPULAR_POOL]
    return pool | {catalog.shows[i] for i in popular}


def tastes(histories: dict[str, list[History]], now: datetime, params: Params,
           disliked: dict[str, frozenset[str]]) -> dict[str, dict[str, float]]:
    """Every user's taste weights (without what they dropped or disliked), computed once per run (each user's
    picks use everyone else's)."""
    return {uid: taste(h, now, params, disliked.get(uid, frozenset()))
            for uid, h in histories.items()}


def recommend_user(conn, model: str, catalog: Catalog, histories: dict[str, list[History]],
                   weights: dict[str, dict[str, float]], user_id: str, params: Params, now: datetime,
                   rules: Rules) -> Result:
    others = {uid: w for uid, w in weights.items() if uid != user_id}
    pool = candidate_pool(conn, model, catalog, weights.get(user_id, {}), others)
    return recommend(catalog, histories.get(user_id, []), others, now, params, pool, rules)


class UsersRules:
    """Each user's Rules for this run; the access verdicts are computed once per distinct policy (a household
    shares a few)."""

    def __init__(self, conn, access: ServerAccess, catalog: Catalog, pipeline: PipelineConfig,
                 user_ids: list[str]) -> None:
        self.access, self.catalog = access, catalog
        self.copies: dict[str, list[SeriesCopy]] = defaultdict(list)
        for c in show_copies(conn):
            self.copies[c.show].append(access.copy(c.series_id, c.library_id, c.path, c.official_rating, c.tags))
        self.disliked = disliked_shows(conn)
        self.preferences = load_preferences(conn, user_ids)
        self.global_genres, self.global_tags = pipeline.excluded_genres(), pipeline.excluded_tags()
        self._verdicts: dict = {}

    def of(self, user_id: str) -> Rules:
        policy = self.access.of(user_id)
        if policy not in self._verdicts:
            self._verdicts[policy] = access_verdicts(policy, self.access.scale, self.copies, self.catalog.shows)
        genres, tags = effective_exclusions(self.preferences[user_id], self.global_genres, self.global_tags)
        return user_rules(self._verdicts[policy], self.disliked.get(user_id, ()), genres, tags)


@asset(
    automation_condition=NEW_USER,
    pool="ai_provider",
    deps=["series_watch_history", "series_embeddings"],
    partitions_def=users_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="recommendations",
    kinds={"postgres", "pgvector"},
    description="Per-user ranked picks with score components, evidence and optional explanations "
    "(the spec's generate-series-recommendations).",
)
@stage_body
def series_recommendations(
    context: AssetExecutionContext, ai: AIProviderResource, database: DatabaseResource, pipeline: PipelineConfig,
    media_server: MediaServerResource,
) -> MaterializeResult:
    started = time.perf_counter()
    params = Params(count=pipeline.recommendations_per_user, dropped_max_share=pipeline.dropped_max_share,
                    dropped_max_episodes=pipeline.dropped_max_episodes,
                    dropped_after_days=pipeline.dropped_after_days)
    explanations = pipeline.explanations
    model = ai.model_key()
    now = datetime.now(UTC)
    with media_server.client() as client:  # what each user may open, as of now; a failed read stops the stage
        access = read_access(client, read_users(client), client.libraries())
    totals = {"run_users": 0, "run_picks": 0, "run_cold_start_users": 0, "run_template_explanations": 0,
              **{f"run_removed_{rule}": 0 for rule in REMOVAL_RULES}}
    with database.connect() as conn:
        catalog, histories = load_world(conn, model)
        no_vector = count_without_vector(conn, model)
        users = run_users(database, list(context.partition_keys))
        everyone = UsersRules(conn, access, catalog, pipeline, users.ids)
        weights = tastes(histories, now, params, everyone.disliked)
        for user_id in users.ids:
            user_started = time.perf_counter()
            result = recommend_user(conn, model, catalog, histories, weights, user_id, params, now,
                                    everyone.of(user_id))
            # the chat model's words when explanations are on, else the one-line reason from the evidence
            texts, templated = explain(result.picks, ai.chat) if explanations else \
                ([template(p) for p in result.picks], 0)
            picks = [(p.rank, p.series_id, p.score, p.components, p.evidence, text)
                     for p, text in zip(result.picks, texts, strict=True)]
            save_run(conn, user_id, model, {**params.as_dict(), "explanations": explanations}, result.cold_start,
                     context.run_id, picks)
            prune_runs(conn, user_id, KEEP_RUNS)
            conn.commit()  # each user's list lands on its own, whatever happens to the next one
            totals["run_users"] += 1
            progress.advance("series_recommendations", "users", totals["run_users"], len(users.ids))
            totals["run_picks"] += len(picks)
            totals["run_cold_start_users"] += result.cold_start
            totals["run_template_explanations"] += templated
            for rule, count in result.removed.items():
                totals[f"run_removed_{rule}"] += count
            context.add_asset_metadata(user_metadata(result, no_vector, time.perf_counter() - user_started),
                                       partition_key=users.key(user_id))
    return MaterializeResult(metadata={
        **totals, "model": model, "catalog_shows": len(catalog.shows),
        "run_duration_seconds": round(time.perf_counter() - started, 3),
    })


def user_metadata(result: Result, no_vector: int, seconds: float) -> dict:
    lines = ["| Rank | Title | Score | Because you watched |", "|---|---|---|---|"]
    for p in result.picks:
        because = ", ".join(f"{e['name']} ({e['similarity']:.2f})" for e in taste_evidence(p.evidence)) \
            or "popular on this server"
        lines.append(f"| {p.rank} | {_cell(p.name)} | {p.score:.3f} | {_cell(because)} |")
    excluded = {f"excluded_{state}": result.excluded.get(state, 0)
                for state in ("in_progress", "caught_up", "completed")}
    return {
        "picks": len(result.picks),
        "cold_start": result.cold_start,
        **excluded,
        **{f"removed_{rule}": result.removed.get(rule, 0) for rule in REMOVAL_RULES},
        "excluded_no_vector": no_vector,
        "duration_seconds": round(seconds, 3),
        "ranked": MetadataValue.md("\n".join(lines)),
    }


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
