"""The AI provider interface and the error classes that tell callers whether to retry, split or stop.

Every provider raises one of four things: `TransientError` (429 rate limit, 5xx, timeout, host not
answering: worth retrying after a pause), `InputError` (the provider rejected something in the
request: split the batch to find it), `ConfigError` (wrong key, unknown model, no quota, wrong
dimensions: stop at once and name the setting) or `ProviderError` (anything else). Messages never
contain API keys.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from aperture_resources.settings import ConfigError

MAX_RETRY_AFTER_SECONDS = 60.0
T = TypeVar("T")


class ProviderError(Exception):
    """An AI provider call failed and retrying the same request will not help."""


class TransientError(ProviderError):
    """Retry after a pause. `retry_after` is the server's hint in seconds; `unreachable` is the
    ConfigError to raise if the host still cannot be reached once the retries are used up."""

    def __init__(self, message: str, retry_after: float | None = None, unreachable: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.unreachable = unreachable


class InputError(ProviderError):
    """The provider rejected the request's content (HTTP 400/413/422)."""


class ChatUnavailableError(ProviderError):
    """This provider has no chat model (the local one); callers fall back to templates."""


def model_key(provider: str, model: str, dimensions: int | None) -> str:
    """"provider:model[:dims]": the name vectors are stored under, so changing any part starts fresh."""
    return f"{provider}:{model}" + (f":{dimensions}" if dimensions else "")


def parse_retry_after(headers: object) -> float | None:
    """Seconds from `retry-after-ms` or a numeric `Retry-After` header (dates are ignored)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return max(0.0, float(get(name)) / divisor)
        except (TypeError, ValueError):
            continue
    return None


def normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)


def call_with_retries(fn: Callable[[], T], retries: int, backoff: float,
                      before_attempt: Callable[[], None] | None = None) -> T:
    """Call `fn`, retrying TransientError up to `retries` times with exponential backoff and jitter,
    or the server's Retry-After (capped) when it sent one. Other errors propagate at once; a host
    that never answered becomes its ConfigError."""
    exponential = wait_exponential_jitter(initial=backoff, max=backoff * 32, jitter=backoff)

    def wait(state: RetryCallState) -> float:
        hint = getattr(state.outcome.exception(), "retry_after", None) if state.outcome else None
        return min(hint, MAX_RETRY_AFTER_SECONDS) if hint is not None else exponential(state)

    def attempt() -> T:
        if before_attempt:
            before_attempt()
        return fn()

    retrying = Retrying(retry=retry_if_exception_type(TransientError), wait=wait,
                        stop=stop_after_attempt(retries + 1), reraise=True)
    try:
        return retrying(attempt)
    except TransientError as exc:
        if exc.unreachable:
            raise ConfigError(exc.unreachable) from None
        raise


class AIProvider(ABC):
    """An embedding model (and, for remote providers, a chat model).

    `embed` sends exactly one request per call (client-side retries are off), so callers own the
    retry policy and can count requests; it returns L2-normalised float32 rows and checks their size.
    """

    name: str = ""
    default_model: str = ""
    default_batch_size = 64

    def __init__(self, *, model: str, dimensions: int | None, expected_dimensions: int | None,
                 batch_size: int = 0, concurrency: int = 4, retries: int = 4, backoff_seconds: float = 0.5) -> None:
        self.model = model
        self.requested_dimensions = dimensions
        self.dimensions = dimensions or expected_dimensions
        self.model_key = model_key(self.name, model, dimensions)
        self.batch_size = batch_size or self.default_batch_size
        self.concurrency = max(1, concurrency)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._lock = threading.Lock()

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per text, in order."""

    def chat(self, messages: list[dict], max_tokens: int = 300) -> str:
        """The assistant's reply to an OpenAI-style message list."""
        raise ChatUnavailableError(f"the {self.name} provider has no chat model; set APERTURE_EMBEDDING_PROVIDER "
                                   "to openai or ollama for written explanations.")

    def close(self) -> None:  # noqa: B027 - only remote providers hold connections
        """Release connections."""

    def _vectors(self, rows: object, count: int) -> np.ndarray:
        """Validate a response's vectors: one per text, all of the expected size; then normalise."""
        array = np.asarray(rows, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != count:
            raise ProviderError(f"{self.model_key} returned {array.shape[0] if array.ndim else 0} vectors "
                                f"for {count} texts.")
        with self._lock:
            if self.dimensions is None:
                self.dimensions = int(array.shape[1])
        if array.shape[1] != self.dimensions:
            hint = "unset it" if self.requested_dimensions else f"set it to {array.shape[1]}"
            raise ConfigError(
                f"APERTURE_EMBEDDING_DIMENSIONS: {self.model_key} returned {array.shape[1]}-dimensional vectors "
                f"but {self.dimensions} were expected; {hint} or use a model that supports that size."
            )
        return normalise(array)
