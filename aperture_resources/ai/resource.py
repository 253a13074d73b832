"""The Dagster resource that hands out the configured AI provider (APERTURE_EMBEDDING_PROVIDER)."""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from aperture_resources.ai.base import AIProvider, call_with_retries, model_key
from aperture_resources.ai.local import LocalProvider
from aperture_resources.ai.ollama import OllamaProvider
from aperture_resources.ai.openai_provider import OpenAIProvider
from aperture_resources.settings import ConfigError

PROVIDERS: dict[str, type[AIProvider]] = {"local": LocalProvider, "openai": OpenAIProvider, "ollama": OllamaProvider}


class AIProviderResource(ConfigurableResource):
    """Embedding and chat settings. Empty/zero values mean the provider's default."""

    provider: str = Field(default="local", description="local | openai | ollama")
    model: str = Field(default="", description="Embedding model (APERTURE_EMBEDDING_MODEL)")
    dimensions: int | None = Field(default=None, description="Vector size to request (APERTURE_EMBEDDING_DIMENSIONS)")
    chat_model: str = Field(default="", description="Chat model for explanations (APERTURE_CHAT_MODEL)")
    openai_base_url: str = ""
    openai_api_key: str = Field(default="", repr=False)
    ollama_host: str = ""
    batch_size: int = Field(default=0, description="Texts per request; 0 = 256 for openai, 64 otherwise")
    concurrency: int = Field(default=4, description="Requests in flight (the local model always runs one batch)")
    timeout_seconds: float = 60.0
    retries: int = Field(default=4, description="Retries of a rate-limited, failing or timed-out request")
    backoff_seconds: float = 0.5
    _provider: AIProvider | None = PrivateAttr(default=None)

    def _kind(self) -> str:
        kind = (self.provider or "local").strip().lower()
        if kind not in PROVIDERS:
            raise ConfigError(f"APERTURE_EMBEDDING_PROVIDER must be local, openai or ollama (got {self.provider!r}).")
        return kind

    def model_key(self) -> str:
        """The key vectors are stored under, without building a client."""
        kind = self._kind()
        default = PROVIDERS[kind].default_model
        if kind == "local":
            return model_key(kind, default, None)
        return model_key(kind, self.model or default, self.dimensions)

    def embedder(self) -> AIProvider:
        """The configured provider (built once per resource instance)."""
        if self._provider is None:
            kind = self._kind()
            options = {"model": self.model, "dimensions": self.dimensions, "batch_size": self.batch_size,
                       "concurrency": self.concurrency, "retries": self.retries,
                       "backoff_seconds": self.backoff_seconds}
            if kind == "openai":
                self._provider = OpenAIProvider(chat_model=self.chat_model, base_url=self.openai_base_url,
                                                api_key=self.openai_api_key, timeout=self.timeout_seconds, **options)
            elif kind == "ollama":
                self._provider = OllamaProvider(chat_model=self.chat_model, host=self.ollama_host,
                                                timeout=self.timeout_seconds, **options)
            else:
                self._provider = LocalProvider(**options)
        return self._provider

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._provider is not None:
            self._provider.close()
            self._provider = None

    def chat(self, messages: list[dict], max_tokens: int = 300) -> str:
        """A chat reply with the same retry policy as embeddings; the local provider raises
        ChatUnavailableError, so callers fall back to template text."""
        provider = self.embedder()
        return call_with_retries(lambda: provider.chat(messages, max_tokens), self.retries, self.backoff_seconds)
