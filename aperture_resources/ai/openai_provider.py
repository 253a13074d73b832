"""OpenAI and any OpenAI-compatible server (LM Studio, vLLM, Ollama's /v1) through the official client.

The client's own retries are off: `call_with_retries` / `embed_batches` own the policy, so every HTTP
request is counted and a persistent error cannot loop. Errors become the classes in `base`, with
messages we write ourselves (provider messages can echo the key). The SDK is imported when a provider is
built: it takes a third of a second, which every process loading the code location would pay otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from aperture_resources.ai.base import AIProvider, InputError, ProviderError, TransientError, parse_retry_after
from aperture_resources.redaction import redact
from aperture_resources.settings import ConfigError

if TYPE_CHECKING:
    import openai

OPENAI_URL = "https://api.openai.com/v1"
KNOWN_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


class OpenAIProvider(AIProvider):
    name = "openai"
    default_model = "text-embedding-3-small"
    default_chat_model = "gpt-4o-mini"
    default_batch_size = 256

    def __init__(self, *, model: str = "", dimensions: int | None = None, chat_model: str = "", base_url: str = "",
                 api_key: str = "", timeout: float = 60.0, **options) -> None:
        model = model or self.default_model
        super().__init__(model=model, dimensions=dimensions, expected_dimensions=KNOWN_DIMENSIONS.get(model),
                         **options)
        self.chat_model = chat_model or self.default_chat_model
        self.base_url = (base_url or OPENAI_URL).rstrip("/")
        if not api_key and self.base_url == OPENAI_URL:
            raise ConfigError("OPENAI_API_KEY is not set: create a key at platform.openai.com, or point "
                              "OPENAI_BASE_URL at an OpenAI-compatible server.")
        self._key = api_key
        import openai

        self._sdk = openai
        # Local OpenAI-compatible servers usually need no key, but the client insists on one.
        self._client = openai.OpenAI(api_key=api_key or "unused", base_url=self.base_url, timeout=timeout,
                                     max_retries=0)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        extra = {"dimensions": self.requested_dimensions} if self.requested_dimensions else {}
        try:
            response = self._client.embeddings.create(model=self.model, input=list(texts), **extra)
        except self._sdk.OpenAIError as exc:
            raise self._translate(exc, "APERTURE_EMBEDDING_MODEL", self.model) from None
        rows = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        return self._vectors(rows, len(texts))

    def chat(self, messages: list[dict], max_tokens: int = 300) -> str:
        try:
            response = self._client.chat.completions.create(
                model=self.chat_model, messages=messages, max_tokens=max_tokens
            )
        except self._sdk.OpenAIError as exc:
            raise self._translate(exc, "APERTURE_CHAT_MODEL", self.chat_model) from None
        return (response.choices[0].message.content or "").strip() if response.choices else ""

    def close(self) -> None:
        self._client.close()

    def _translate(self, exc: openai.OpenAIError, model_var: str, model: str) -> Exception:
        where = self.base_url
        if isinstance(exc, self._sdk.APITimeoutError):
            return TransientError(f"{where} timed out")
        if isinstance(exc, self._sdk.APIConnectionError):
            return TransientError(f"cannot connect to {where}", unreachable=(
                f"OPENAI_BASE_URL: cannot reach {where}; check the URL and that the server is running."))
        if not isinstance(exc, self._sdk.APIStatusError):
            return ProviderError(f"unexpected answer from {where} ({type(exc).__name__}).")
        status = exc.status_code
        if status in (401, 403):
            return ConfigError(f"OPENAI_API_KEY was rejected by {where} (HTTP {status}); set a valid API key.")
        if status == 429 and "insufficient_quota" in (exc.code, exc.type):
            return ConfigError(f"OPENAI_API_KEY has no quota left at {where} (insufficient_quota); add credit "
                               "to the account or use another key.")
        if status == 429 or status >= 500:
            return TransientError(f"HTTP {status} from {where}", retry_after=parse_retry_after(exc.response.headers))
        if status == 404:
            return ConfigError(f"{model_var}: {where} has no model {model!r} (HTTP 404); use a model it serves, "
                               "and check that OPENAI_BASE_URL ends in /v1.")
        reason = self._reason(exc)
        if status in (400, 413, 422):
            if self.requested_dimensions and "dimension" in reason.lower():
                return ConfigError(f"APERTURE_EMBEDDING_DIMENSIONS: {model!r} at {where} rejected "
                                   f"{self.requested_dimensions} dimensions ({reason}); unset it or change it.")
            return InputError(f"HTTP {status}: {reason}")
        return ProviderError(f"HTTP {status} from {where}: {reason}")

    def _reason(self, exc: openai.APIStatusError) -> str:
        """The provider's error message, short and with the key removed (before cutting, so no half key stays)."""
        body = exc.body if isinstance(exc.body, dict) else {}
        return redact(str(body.get("message") or exc.message), [self._key])[:200]
