"""Embedding many texts: batches in parallel (bounded), retries that end, and bad inputs isolated.

The prior tool looped forever on a persistent non-429 error. Here every path ends: transient errors
are retried a fixed number of times, a rejected batch is bisected until the offending texts stand
alone (at most 2n-1 requests for n texts), and user-fixable errors stop the whole run at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import numpy as np

from aperture_resources.ai.base import AIProvider, InputError, ProviderError, TransientError, call_with_retries

# If this many texts are rejected one by one before any text succeeds, the provider is rejecting
# everything (a setting, not the data): stop rather than bisect every batch down to single texts.
REJECTED_BEFORE_GIVING_UP = 5


def embed_batches(
    embedder: AIProvider, texts: Sequence[str], batch_size: int, concurrency: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[int, np.ndarray], dict[int, str], int]:
    """Embed `texts`; returns (vectors by index, failure reason by index, HTTP requests made). `on_progress` hears
    (batches done, batches) as batches finish.

    Raises ConfigError (wrong key, no quota, unknown model, wrong dimensions, unreachable host),
    and ProviderError when the provider rejects every text or fails every request.
    """
    vectors: dict[int, np.ndarray] = {}
    failures: dict[int, str] = {}
    gave_up: list[TransientError] = []
    lock = threading.Lock()
    requests = finished = 0

    def count() -> None:
        nonlocal requests
        with lock:
            requests += 1

    def batch(indices: list[int]) -> None:
        nonlocal finished
        run(indices)
        with lock:
            finished += 1
            if on_progress is not None:
                on_progress(finished, len(batches))

    def run(indices: list[int]) -> None:
        try:
            rows = call_with_retries(lambda: embedder.embed([texts[i] for i in indices]),
                                     embedder.retries, embedder.backoff_seconds, before_attempt=count)
        except InputError as exc:
            if len(indices) > 1:
                middle = len(indices) // 2
                run(indices[:middle])
                run(indices[middle:])
                return
            with lock:
                failures[indices[0]] = str(exc)
                if not vectors and len(failures) >= REJECTED_BEFORE_GIVING_UP:
                    raise ProviderError(f"{embedder.model_key} rejects every text ({exc}); check "
                                        "APERTURE_EMBEDDING_MODEL and APERTURE_EMBEDDING_DIMENSIONS.") from None
            return
        except TransientError as exc:
            with lock:
                gave_up.append(exc)
                failures.update({i: f"{exc} (gave up after {embedder.retries + 1} attempts)" for i in indices})
            return
        with lock:
            vectors.update(zip(indices, rows, strict=True))

    batch_size = max(1, batch_size)
    batches = [list(range(start, min(start + batch_size, len(texts)))) for start in range(0, len(texts), batch_size)]
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(batches) or 1))) as pool:
        futures = [pool.submit(batch, indices) for indices in batches]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception():
                pool.shutdown(wait=True, cancel_futures=True)
                raise future.exception()
    if gave_up and not vectors:
        raise ProviderError(f"{embedder.model_key}: every request failed ({gave_up[0]}, "
                            f"{embedder.retries + 1} attempts each); is the provider down?")
    return vectors, failures, requests
