"""`series_embeddings` end to end: series rows in real PostgreSQL, real HTTP to the fake AI server (or the
real local model), vectors in pgvector."""

from __future__ import annotations

import pytest
from aperture_dev.fake_ai_server import FakeAIServer
from dagster import materialize

from aperture_assets.defs.embeddings.assets import series_embeddings
from aperture_assets.defs.embeddings.checks import every_series_has_a_vector
from aperture_resources.ai import AIProviderResource
from aperture_resources.embedding_store import index_name

KEY = "sk-test-SECRET-4242"

SERIES = [
    ("s1", "Breaking Bad", 2008, "A chemistry teacher with cancer starts cooking methamphetamine.",
     ["Crime", "Drama"], "AMC"),
    ("s2", "The Wire", 2002, "Baltimore's drug trade, seen by dealers and the detectives who chase them.",
     ["Crime", "Drama"], "HBO"),
    ("s3", "Peppa Pig", 2004, "A cheerful little pig loves jumping in muddy puddles with her brother George.",
     ["Animation", "Children"], "Nick Jr."),
    ("s4", "Bluey", 2018, "A blue heeler puppy turns everyday family life into playful adventures.",
     ["Animation", "Children"], "ABC Kids"),
    ("s5", "Narcos", 2015, "The rise of the Medellin cartel and the DEA agents hunting Pablo Escobar.",
     ["Crime", "Drama", "Thriller"], "Netflix"),
]


@pytest.fixture
def server():
    with FakeAIServer(api_key=KEY) as fake:
        yield fake


def execute(database, query: str, params: tuple = ()) -> None:
    with database.connect() as conn:
        conn.execute(query, params)


@pytest.fixture
def catalog(database):
    """Active series straight into the catalog table (no media server needed), plus one removed series
    and a second library's copy of The Wire (same text, so it is embedded once)."""
    rows = [*SERIES, ("s2-copy", *SERIES[1][1:])]
    for sid, name, year, overview, genres, network in rows:
        execute(database, "INSERT INTO series (id, library_id, name, year, overview, genres, network) "
                "VALUES (%s, 'lib', %s, %s, %s, %s, %s)", (sid, name, year, overview, genres, network))
    execute(database, "INSERT INTO series (id, library_id, name, removed_at) VALUES ('gone', 'lib', 'Removed', now())")
    return rows


def openai_ai(server: FakeAIServer, **overrides) -> AIProviderResource:
    params = {"provider": "openai", "openai_base_url": server.openai_base_url, "openai_api_key": KEY,
              "retries": 2, "backoff_seconds": 0.01, **overrides}
    return AIProviderResource(**params)


def run(ai: AIProviderResource, database, with_check: bool = True):
    assets = [series_embeddings, every_series_has_a_vector] if with_check else [series_embeddings]
    return materialize(assets, resources={"ai": ai, "database": database}, raise_on_error=False)


def meta(result) -> dict:
    materialization = result.asset_materializations_for_node("series_embeddings")[0]
    return {k: v.value for k, v in materialization.metadata.items()}


def check(result):
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_first_run_embeds_every_active_series_once(server, catalog, database, sql):
    result = run(openai_ai(server), database)
    assert result.success
    m = meta(result)
    assert m["model"] == "openai:text-embedding-3-small" and m["dimensions"] == 1536
    assert (m["embedded"], m["skipped_unchanged"], m["failed"]) == (6, 0, 0)
    assert (m["distinct_texts_sent"], m["provider_requests"]) == (5, 1)
    assert server.request_count == 1
    assert check(result).passed
    rows = sql("SELECT series_id, dims FROM series_embeddings WHERE model = %s ORDER BY 1", (m["model"],))
    assert rows == [(sid, 1536) for sid in sorted(r[0] for r in catalog)]
    indexes = sql("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (index_name(m["model"]),))
    assert "hnsw" in indexes[0][0] and "vector(1536)" in indexes[0][0]


def test_no_change_run_sends_nothing(server, catalog, database):
    ai = openai_ai(server)
    assert run(ai, database).success
    server.reset_counters()
    result = run(ai, database)
    m = meta(result)
    assert (m["embedded"], m["skipped_unchanged"], m["provider_requests"]) == (0, 6, 0)
    assert server.request_count == 0
    assert check(result).passed


def test_changed_overview_reembeds_only_that_series(server, catalog, database, sql):
    ai = openai_ai(server)
    assert run(ai, database).success
    before = sql("SELECT text_hash, updated_at FROM series_embeddings WHERE series_id = 's1'")[0]
    execute(database, "UPDATE series SET overview = 'A mild-mannered teacher becomes a drug kingpin.' WHERE id = 's1'")
    server.reset_counters()
    m = meta(run(ai, database))
    assert (m["embedded"], m["skipped_unchanged"], m["provider_requests"]) == (1, 5, 1)
    (request,) = server.requests
    assert len(request["body"]["input"]) == 1 and "drug kingpin" in request["body"]["input"][0]
    after = sql("SELECT text_hash, updated_at FROM series_embeddings WHERE series_id = 's1'")[0]
    assert after[0] != before[0] and after[1] > before[1]


def test_new_series_is_embedded_and_removed_one_is_not(server, catalog, database, sql):
    ai = openai_ai(server)
    assert run(ai, database).success
    execute(database, "INSERT INTO series (id, library_id, name, year) VALUES ('s6', 'lib', 'Severance', 2022)")
    m = meta(run(ai, database))
    assert (m["embedded"], m["provider_requests"]) == (1, 1)
    assert sql("SELECT count(*) FROM series_embeddings WHERE series_id = 'gone'")[0][0] == 0


def test_rate_limit_then_success(server, catalog, database):
    server.fail_next(2, 429, retry_after=0.05, code="rate_limit_exceeded")
    result = run(openai_ai(server), database)
    m = meta(result)
    assert (m["embedded"], m["failed"], m["provider_requests"]) == (6, 0, 3)


def test_poisoned_series_is_reported_while_the_others_land(catalog, database, sql):
    with FakeAIServer(api_key=KEY, poison="Medellin") as fake:
        result = run(openai_ai(fake), database)
    assert result.success  # a rejected text is reported, not fatal
    m = meta(result)
    assert (m["embedded"], m["failed"]) == (5, 1)
    assert list(m["failures"]) == ["Narcos (2015)"] and "HTTP 400" in m["failures"]["Narcos (2015)"]
    assert m["provider_requests"] <= 2 * 5 - 1
    evaluation = check(result)
    assert not evaluation.passed and evaluation.metadata["missing"].value == 1
    assert sql("SELECT count(*) FROM series_embeddings WHERE series_id = 's5'")[0][0] == 0


def test_wrong_key_fails_the_run_without_leaking_it(server, catalog, database):
    result = run(openai_ai(server, openai_api_key="sk-wrong-SECRET-9999"), database, with_check=False)
    assert not result.success
    failure = result.failure_data_for_node("series_embeddings")
    assert "OPENAI_API_KEY" in failure.error.to_string()
    events = " ".join(str(event) for event in result.all_events)
    assert "SECRET" not in events


def test_key_never_in_metadata(server, catalog, database):
    result = run(openai_ai(server), database)
    events = " ".join(str(event) for event in result.all_events)
    assert result.success and "SECRET" not in events


def test_a_new_model_gets_its_own_vectors_and_index(server, catalog, database, sql):
    assert run(openai_ai(server), database).success
    m = meta(run(openai_ai(server, dimensions=256), database))
    assert m["model"] == "openai:text-embedding-3-small:256" and m["embedded"] == 6
    counts = sql("SELECT model, dims, count(*) FROM series_embeddings GROUP BY 1, 2 ORDER BY 1")
    assert counts == [("openai:text-embedding-3-small", 1536, 6), ("openai:text-embedding-3-small:256", 256, 6)]
    names = {r[0] for r in sql("SELECT indexname FROM pg_indexes WHERE tablename = 'series_embeddings'")}
    assert {index_name("openai:text-embedding-3-small"), index_name(m["model"])} <= names


def test_ollama_model_must_keep_its_stored_size(catalog, database):
    with FakeAIServer(models={"my-embedder": 128}) as fake:
        ai = AIProviderResource(provider="ollama", ollama_host=fake.url, model="my-embedder")
        assert meta(run(ai, database))["dimensions"] == 128
    execute(database, "UPDATE series SET overview = 'New text.' WHERE id = 's1'")
    with FakeAIServer(models={"my-embedder": 64}) as fake:  # same name, different model behind it
        ai = AIProviderResource(provider="ollama", ollama_host=fake.url, model="my-embedder")
        result = run(ai, database, with_check=False)
    assert not result.success  # fails before any write, instead of corrupting the index
    assert "APERTURE_EMBEDDING_DIMENSIONS" in result.failure_data_for_node("series_embeddings").error.to_string()


def test_local_model_end_to_end_nearest_neighbours_make_sense(catalog, database, sql):
    result = run(AIProviderResource(), database)
    assert result.success and check(result).passed
    m = meta(result)
    assert (m["model"], m["dimensions"], m["embedded"]) == ("local:all-MiniLM-L6-v2", 384, 6)

    def nearest(sid: str) -> list[str]:
        rows = sql(
            "SELECT e.series_id FROM series_embeddings e, series_embeddings q "
            "WHERE q.series_id = %s AND q.model = e.model AND e.model = 'local:all-MiniLM-L6-v2' "
            "AND e.series_id NOT IN (%s, 's2-copy') "
            "ORDER BY e.embedding::vector(384) <=> q.embedding::vector(384)", (sid, sid))
        return [r[0] for r in rows]

    assert set(nearest("s1")[:2]) == {"s2", "s5"}  # crime dramas, not cartoons
    assert nearest("s3")[0] == "s4"
