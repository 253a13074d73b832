"""Embeddings benchmark: 2,000 synthetic series embedded through the `series_embeddings` asset into the
embedded PostgreSQL, against the fake OpenAI-compatible server with 150 ms latency per request. Prints
wall time and requests for a first run and a no-change re-run, with the ratio to the prior tool's
measured 775 s / 2,026 requests (prior-art.md), then the local ONNX model's texts per second.

Run: .venv/bin/python bench/bench_embeddings.py [--series 2000] [--latency-ms 150] [--local-texts 500]
"""

import argparse
import math
import random
import shutil
import tempfile
import time
from pathlib import Path

from aperture_dev.fake_ai_server import FakeAIServer
from dagster import materialize

from aperture_assets.defs.embeddings.assets import series_embeddings
from aperture_assets.logic.embedding_text import series_text
from aperture_resources import database as db
from aperture_resources.ai import AIProviderResource, embed_batches
from aperture_resources.database import DatabaseResource

PRIOR_TOOL_SECONDS = 775.0
PRIOR_TOOL_REQUESTS = 2026
GENRES = ["Drama", "Crime", "Comedy", "Animation", "Documentary", "Sci-Fi", "Fantasy", "Thriller", "Family",
          "Reality", "Mystery", "Romance", "War", "Western", "Horror"]
NETWORKS = ["HBO", "AMC", "BBC One", "Netflix", "Nick Jr.", "FX", "Channel 4", "Apple TV+", "ABC", "NBC"]
WORDS = ["detective", "family", "town", "secret", "war", "kingdom", "crew", "ship", "murder", "school", "friends",
         "island", "police", "hospital", "lawyer", "chef", "farm", "robot", "space", "dragon", "band", "court",
         "heist", "prison", "village", "doctor", "journalist", "spy"]


def synthetic_series(count: int, seed: int = 7) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 90)))
        rows.append((f"series-{i:05d}", f"Show {i} {rng.choice(WORDS).title()}", rng.randint(1960, 2025),
                     f"A story about {words}.", rng.sample(GENRES, rng.randint(1, 3)), rng.choice(NETWORKS)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=150)
    parser.add_argument("--local-texts", type=int, default=500)
    args = parser.parse_args()

    series = synthetic_series(args.series)
    server = FakeAIServer(api_key="bench", latency_ms=args.latency_ms).start()
    root = Path(tempfile.mkdtemp(prefix="aperture-bench-", dir="/tmp"))
    try:
        url = db.start_embedded(root, stop_on_exit=True)
        database = DatabaseResource(url=db.with_database(url, db.APP_DATABASE))
        with database.connect() as conn, conn.cursor() as cur:  # migrations + catalog rows, outside the timing
            cur.executemany("INSERT INTO series (id, library_id, name, year, overview, genres, network) "
                            "VALUES (%s, 'bench', %s, %s, %s, %s, %s)", series)
        ai = AIProviderResource(provider="openai", openai_base_url=server.openai_base_url, openai_api_key="bench")
        batch = ai.embedder().batch_size
        for label in ("first run", "no-change re-run"):
            server.reset_counters()
            started = time.perf_counter()
            result = materialize([series_embeddings], resources={"ai": ai, "database": database})
            seconds = time.perf_counter() - started
            m = {k: v.value for k, v in result.asset_materializations_for_node("series_embeddings")[0].metadata.items()}
            print(f"{label:>16}: {seconds:6.2f} s wall (asset {m['duration_seconds']:.2f} s), "
                  f"{m['provider_requests']} provider requests ({server.request_count} seen by the server, "
                  f"limit ceil({args.series}/{batch}) = {math.ceil(args.series / batch)}), "
                  f"{m['embedded']} embedded / {m['skipped_unchanged']} unchanged / {m['failed']} failed; "
                  f"prior tool {PRIOR_TOOL_SECONDS:.0f} s / {PRIOR_TOOL_REQUESTS} requests "
                  f"-> {PRIOR_TOOL_SECONDS / seconds:.0f}x faster")
    finally:
        server.stop()
        db.stop_embedded(root)
        shutil.rmtree(root, ignore_errors=True)

    texts = [series_text(name, year, None, None, overview, genres, [], network)
             for _, name, year, overview, genres, network in series[: args.local_texts]]
    local = AIProviderResource(provider="local").embedder()
    local.embed(texts[:4])  # load the model outside the timing
    started = time.perf_counter()
    vectors, failures, _ = embed_batches(local, texts, local.batch_size, local.concurrency)
    seconds = time.perf_counter() - started
    print(f"local model ({local.model_key}): {len(vectors)} texts in {seconds:.2f} s "
          f"= {len(vectors) / seconds:.0f} texts/s, {len(failures)} failed")


if __name__ == "__main__":
    main()
