"""`series_recommendations[user]`: each user's ranked picks, one partition per user.

The taste profile is rebuilt from episode history on every run that computes picks. A user whose latest picks
were made less than RECOMPUTE_AFTER ago from the same inputs (`inputs_digest`: code, settings, catalog,
embeddings, every history, rules and access) keeps them: a run after which nothing changed is nearly free, and
the weekly run always computes afresh. Each run that computes first tunes the blend
on this server's own history (`tuning`), then computes the collaborative model (EASE) once for everyone.
Candidates come from the nearest neighbours of the user's watched shows, the user's best collaborative
scores and the server's most popular shows; `recommend` ranks them. Neighbours are searched exactly in the
catalog's float32 matrix, once per watched show per run for a batch of users at a time: at 20,000 shows of
1,536 dimensions that took 1-2 s for every show anyone watched, where pgvector's HNSW index took 16 s. Each run
is stored with its parameters and the tuning's choice and validation scores, so the latest list per user is well
defined and explained; older runs beyond a few are pruned.

What a user may open is read from the server on every run (their policy, the libraries, the rating scale):
a pick is always a copy they can play, and a failed read stops the stage rather than picking blind. Their
dislikes, the shows they dropped and the admin's exclusions (global and per user) apply too; the metadata
counts the candidates each rule removed.
"""


import hashlib
import json
import time
from collections import defaultdict
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from aperture_assets import logic
from aperture_assets.logic.collaborative import UserSignal, ease
from aperture_assets.logic.explanations import explain, taste_evidence, template
from aperture_assets.logic.recommend import (
    REMOVAL_RULES,
    SHOWN_COMPONENTS,
    Catalog,
    History,
    Params,
    Pick,
    Result,
    Rules,
    recommend,
)
from aperture_assets.logic.rules import access_verdicts, user_rules
from aperture_assets.logic.scoring import Watched
from aperture_assets.logic.tuning import (
    Neighbours,
    started,
    tastes_of,
    tune,
    usual_candidates,
)
from aperture_assets.wiring import progress
from aperture_assets.wiring.automation import NEW_USER
from aperture_assets.wiring.partitions import read_users, run_users, users_partitions
from aperture_assets.wiring.stage import stage_body
from aperture_resources.ai import AIProviderResource
from aperture_resources.database import DatabaseResource
from aperture_resources.media_server import MediaServerResource
from aperture_resources.media_server.access import AccessRules, SeriesCopy, ServerAccess, library_key, read_access
from aperture_resources.pipeline_config import PipelineConfig
from aperture_resources.preference_store import effective_exclusions, load_preferences
from aperture_resources.recommendation_store import (
    catalog_libraries,
    count_without_vector,
    disliked_shows,
    inputs_version,
    prune_runs,
    save_run,
    show_copies,
    shows,
    standing_users,
    user_histories,
)
from aperture_resources.report_store import FullPick, latest_picks_of
from aperture_resources.watch_store import catalog_version

KEEP_RUNS = 5
BATCH = 100  # users whose neighbour searches are made together
# Picks made from the same inputs stand for this long; after it they are made again, as the clock moves recency
# and "dropped". Under a day, so a daily or weekly schedule always makes fresh picks.
RECOMPUTE_AFTER = timedelta(hours=20)
# The ranking code itself is an input: picks made by other code do not stand.
LOGIC_VERSION = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(Path(logic.__file__).parent.glob("*.py"))
                                        )).hexdigest()


def load_world(conn, model: str) -> tuple[Catalog, dict[str, list[History]]]:
    """Every show with a vector for `model`, and every enabled user's history by show."""
    rows, vectors = shows(conn, model)
    catalog = Catalog(
        shows=[r.show for r in rows], series_ids=[r.series_id for r in rows], names=[r.name for r in rows],
        ratings=[r.community_rating for r in rows], genres=[list(r.genres or []) for r in rows],
        vectors=vectors, tags=[list(r.tags or []) for r in rows],
    )
    histories: dict[str, list[History]] = defaultdict(list)
    for h in user_histories(conn):
        watched = Watched(h.show, h.episodes_watched, h.episodes_available, h.max_play_count, h.is_favorite,
                          h.last_watched_at)
        histories[h.user_id].append(History(h.show, h.state, watched, h.started_at))
    catalog.count_watchers(histories)
    return catalog, dict(histories)


def anchors_of(catalog: Catalog, mine: dict[str, float]) -> list[int]:
    return [catalog.index[s] for s in mine if s in catalog.index]


def recommend_user(catalog: Catalog, histories: dict[str, list[History]], weights: dict[str, dict[str, float]],
                   neighbours: Neighbours, signal: UserSignal, user_id: str, params: Params, now: datetime,
                   rules: Rules) -> Result:
    """Picks from the candidate pool: neighbours of the user's shows, their best collaborative scores and the
    server's most popular shows they haven't started (the tuning's `local_pool`)."""
    history = histories.get(user_id, [])
    pool = neighbours.of(anchors_of(catalog, weights.get(user_id, {}))) | \
        usual_candidates(catalog, signal, started(history))
    return recommend(catalog, history, signal, now, params, pool, rules)


class UsersRules:
    """Each user's Rules for this run; the access verdicts are computed once per distinct policy (a household
    shares a few) as far as the catalog's libraries go: once picks libraries exist, every user's policy names
    their own one, and comparing whole policies computed verdicts for every show once per user (20 s at 480
    users and 20,000 shows)."""

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
        self.libraries = frozenset(library_key(c.library) for cs in self.copies.values() for c in cs)

    def of(self, user_id: str) -> Rules:
        policy = catalog_part(self.access.of(user_id), self.libraries)
        if policy not in self._verdicts:
            self._verdicts[policy] = access_verdicts(policy, self.access.scale, self.copies, self.catalog.shows)
        genres, tags = effective_exclusions(self.preferences[user_id], self.global_genres, self.global_tags)
        return user_rules(self._verdicts[policy], self.disliked.get(user_id, ()), genres, tags)


def catalog_part(policy: AccessRules, libraries: frozenset[str]) -> AccessRules:
    """`policy` as far as `libraries` (the `library_key`s of those holding a catalog copy) go: the same
    verdict for every copy, and one for users whose policies differ only in other libraries. "All folders" is
    spelled as those libraries, the same policy as far as they go: the library stage turns a user's "all folders"
    into a list (to keep others' picks libraries from them), which must not look like a new policy."""
    folders = libraries if policy.all_folders else policy.folders & libraries
    return replace(policy, all_folders=False, folders=folders, blocked_folders=policy.blocked_folders & libraries,
                   excluded_libraries=policy.excluded_libraries & libraries,
                   excluded_locations=frozenset(e for e in policy.excluded_locations if e[0] in libraries))


class RecommendationsConfig(Config):
    """Run options of `series_recommendations`."""

    recompute: bool = False  # fresh picks for every user of the run, even where nothing they are made from changed


@asset(
    automation_condition=NEW_USER,
    pool="ai_provider",
    deps=["series_watch_history", "series_embeddings"],
    partitions_def=users_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="recommendations",
    kinds={"postgres", "pgvector"},
    description="Per-user ranked picks with score components, evidence and optional explanations, under the "
    "user's library access, parental limits and dislikes.",
)
@stage_body
def series_recommendations(
    context: AssetExecutionContext, config: RecommendationsConfig, ai: AIProviderResource, database: DatabaseResource,
    pipeline: PipelineConfig, media_server: MediaServerResource,
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
        users = run_users(database, list(context.partition_keys))
        inputs = inputs_digest(conn, model, params, pipeline, access)
        standing = {} if config.recompute else standing_users(conn, users.ids, inputs, now - RECOMPUTE_AFTER)
        kept = latest_picks_of(conn, sorted(standing))
        for user_id, (made_at, cold_start) in standing.items():  # nothing they were made from changed: they stand
            context.add_asset_metadata(standing_metadata(kept.get(user_id, []), made_at, cold_start),
                                       partition_key=users.key(user_id))
        todo = [u for u in users.ids if u not in standing]
        unchanged = {"run_users_unchanged": len(standing)}
        if not todo:
            tuning = next((p[0].parameters.get("tuning") for p in kept.values()), None)
            return MaterializeResult(metadata={
                **totals, **unchanged, "model": model, **(tuning_metadata(tuning) if tuning else {}),
                "run_duration_seconds": round(time.perf_counter() - started, 3)})
        catalog, histories = load_world(conn, model)
        no_vector = count_without_vector(conn, model)
        everyone = UsersRules(conn, access, catalog, pipeline, todo)
        tuning_started = time.perf_counter()
        neighbours = Neighbours(catalog)  # searched once per watched show, shared by the tuning and the picks
        tuning = tune(catalog, histories, now, params, everyone.disliked, neighbours)  # this server's blend, now
        params = tuning.params
        weights = tastes_of(histories, now, params, everyone.disliked)
        collab_started = time.perf_counter()
        collab = ease(weights, params.ease_lambda)  # once for everyone
        costs = {"tuning_seconds": round(collab_started - tuning_started, 3),
                 "collaborative_seconds": round(time.perf_counter() - collab_started, 3),
                 "collaborative_matrix": f"{len(collab.users)} users x {len(collab.items)} shows"}
        stored = {**params.as_dict(), "explanations": explanations, "tuning": tuning.as_dict(), "inputs": inputs}
        for n, user_id in enumerate(todo):
            if n % BATCH == 0:  # one search per anchor not yet seen, for the next BATCH users at once
                neighbours.prepare(r for u in todo[n:n + BATCH] for r in anchors_of(catalog, weights.get(u, {})))
            user_started = time.perf_counter()
            result = recommend_user(catalog, histories, weights, neighbours, collab.signal(user_id), user_id,
                                    params, now, everyone.of(user_id))
            # the chat model's words when explanations are on, else the one-line reason from the evidence
            texts, templated = explain(result.picks, ai.chat) if explanations else \
                ([template(p) for p in result.picks], 0)
            picks = [(p.rank, p.series_id, p.score, p.components, p.evidence, text)
                     for p, text in zip(result.picks, texts, strict=True)]
            save_run(conn, user_id, model, stored, result.cold_start, context.run_id, picks)
            prune_runs(conn, user_id, KEEP_RUNS)
            conn.commit()  # each user's list lands on its own, whatever happens to the next one
            totals["run_users"] += 1
            progress.advance("series_recommendations", "users", totals["run_users"], len(todo))
            totals["run_picks"] += len(picks)
            totals["run_cold_start_users"] += result.cold_start
            totals["run_template_explanations"] += templated
            for rule, count in result.removed.items():
                totals[f"run_removed_{rule}"] += count
            context.add_asset_metadata(user_metadata(result, no_vector, time.perf_counter() - user_started),
                                       partition_key=users.key(user_id))
    return MaterializeResult(metadata={
        **totals, **unchanged, "model": model, "catalog_shows": len(catalog.shows),
        **tuning_metadata(tuning.as_dict()), **costs, "run_duration_seconds": round(time.perf_counter() - started, 3),
    })


def inputs_digest(conn, model: str, params: Params, pipeline: PipelineConfig, access: ServerAccess) -> str:
    """A digest of everything a run's picks are made from besides the clock: the code, the settings, the catalog,
    embeddings, users, histories and rules in the database, and what each user may open. A user whose latest
    picks were made from an equal digest keeps them (for RECOMPUTE_AFTER): a run that changes nothing rewrites
    nothing, and the libraries downstream see the same lists."""
    version = catalog_version(conn)
    # as far as the catalog's libraries go (as UsersRules): a new picks library, on the server and in every policy,
    # changes no pick
    held = catalog_libraries(conn)
    libraries = frozenset(library_key(access.permission_ids.get(i, i)) for i in held)
    rules = sorted((user_id, [sorted(v) if isinstance(v, frozenset) else v
                              for v in (getattr(r, f.name) for f in fields(r))])
                   for user_id, r in ((u, catalog_part(policy, libraries)) for u, policy in access.rules.items()))
    payload = [LOGIC_VERSION, model, params.as_dict(), pipeline.explanations, sorted(pipeline.excluded_genres()),
               sorted(pipeline.excluded_tags()), version.version, inputs_version(conn, model), rules,
               sorted((i, access.permission_ids.get(i)) for i in held), sorted(access.scale.items())]
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


def standing_metadata(picks: list[FullPick], made_at: datetime, cold_start: bool) -> dict:
    """A user whose picks stand: when they were made, and the picks as `user_metadata` shows them."""
    shown = [Pick(p.rank, p.series_id, p.series_id, p.name, p.score, p.components, p.evidence) for p in picks]
    return {
        "picks": len(picks),
        "cold_start": cold_start,
        "unchanged_since": made_at.isoformat(timespec="seconds"),
        **picks_metadata(Result(shown, cold_start, {})),
    }


def tuning_metadata(summary: dict) -> dict:
    """The settings the run chose for the server and their validation scores (`Tuning.as_dict`)."""
    chosen = ", ".join(f"{name} {value:g}" for name, value in summary["chosen"].items())
    return {"tuning": f"{summary['reason']}: {chosen}",
            **{f"tuning_{name}": value for name, value in summary["chosen"].items()},
            "tuning_validation_users": summary["validation_users"],
            "tuning_validation_ndcg": summary["validation_ndcg"],
            "tuning_default_ndcg": summary["default_ndcg"],
            "tuning_settings_tried": summary["settings_tried"]}


def user_metadata(result: Result, no_vector: int, seconds: float) -> dict:
    """Counts, then the picks (`picks_metadata`)."""
    excluded = {f"excluded_{state}": result.excluded.get(state, 0)
                for state in ("in_progress", "caught_up", "completed")}
    return {
        "picks": len(result.picks),
        "cold_start": result.cold_start,
        **excluded,
        **{f"removed_{rule}": result.removed.get(rule, 0) for rule in REMOVAL_RULES},
        "excluded_no_vector": no_vector,
        "duration_seconds": round(seconds, 3),
        **picks_metadata(result),
    }


def picks_metadata(result: Result) -> dict:
    """The picks as visible text entries in rank order ("pick 01", ...), why the order, then the same as a table."""
    lines = ["| Rank | Title | Score | Because you watched |", "|---|---|---|---|"]
    for p in result.picks:
        because = ", ".join(f"{e['name']} ({e['similarity']:.2f})" for e in taste_evidence(p.evidence)) \
            or "popular on this server"
        lines.append(f"| {p.rank} | {_cell(p.name)} | {p.score:.3f} | {_cell(because)} |")
    return {
        **{f"pick {p.rank:02d}": MetadataValue.text(pick_line(p)) for p in result.picks},
        "order": MetadataValue.text(order_note(result)),
        "ranked": MetadataValue.md("\n".join(lines)),
    }


def pick_line(p: Pick) -> str:
    """"Title — score 0.81 (content 0.50, collaborative 0.22, popularity 0.05, rating 0.04) — because you
    watched X, Y": the components add up to the score (less any pull of disliked or dropped shows)."""
    parts = ", ".join(f"{name} {value:.2f}" for name, value in p.components.items()
                      if name in SHOWN_COMPONENTS and name != "negative")
    if p.components.get("negative", 0.0) >= 0.005:
        parts += f", minus {p.components['negative']:.2f} for shows you disliked or dropped"
    names = [e["name"] for e in taste_evidence(p.evidence)]
    because = f"because you watched {', '.join(names)}" if names else "popular and well rated on this server"
    against = [f"{e['name']} ({e['signal']})" for e in p.evidence if e not in taste_evidence(p.evidence)]
    return f"{p.name} — score {p.score:.2f} ({parts}) — {because}" + \
        (f"; held back by {', '.join(against)}" if against else "")


def order_note(result: Result) -> str:
    """Why a pick can rank above one with a higher score: MMR trades score for variety."""
    if result.cold_start:
        return "Cold start: ranked by popularity and rating alone."
    moved = [f"pick {p.rank:02d} (score {p.score:.3f}) gave way to pick {above.rank:02d} ({above.score:.3f}): it is "
             f"{p.components.get('mmr_similarity', 0):.2f} similar to a pick above it"
             for p, above in zip(result.picks[1:], result.picks, strict=False) if p.score > above.score]
    return "Ranked by score, with variety (MMR): a pick much like those above it gives way to a different one." \
        + (" Here " + "; ".join(moved) + "." if moved else " Here every pick follows score order.")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
