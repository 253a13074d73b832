"""Ollama's native API: `POST /api/embed` with a list `input` (one request per batch) and `/api/chat`."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import numpy as np

from aperture_resources.ai.base import AIProvider, InputError, ProviderError, TransientError, parse_retry_after
from aperture_resources.settings import ConfigError

DEFAULT_HOST = "http://127.0.0.1:11434"
KNOWN_DIMENSIONS = {"nomic-embed-text": 768, "mxbai-embed-large": 1024, "all-minilm": 384}


def host_url(host: str) -> str:
    """OLLAMA_HOST as Ollama itself accepts it: "host:port" without a scheme means http."""
    host = (host or DEFAULT_HOST).strip().rstrip("/")
    return host if host.startswith(("http://", "https://")) else f"http://{host}"


class OllamaProvider(AIProvider):
    name = "ollama"
    default_model = "nomic-embed-text"
    default_chat_model = "llama3.2"

    def __init__(self, *, model: str = "", dimensions: int | None = None, chat_model: str = "", host: str = "",
                 timeout: float = 120.0, **options) -> None:
        model = model or self.default_model
        super().__init__(model=model, dimensions=dimensions,
                         expected_dimensions=KNOWN_DIMENSIONS.get(model.removesuffix(":latest")), **options)
        self.chat_model = chat_model or self.default_chat_model
        self.host = host_url(host)
        self._http = httpx.Client(base_url=self.host, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                                  limits=httpx.Limits(max_connections=self.concurrency * 2))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        body: dict = {"model": self.model, "input": list(texts), "truncate": True}
        if self.requested_dimensions:
            body["dimensions"] = self.requested_dimensions
        data = self._post("/api/embed", body, "APERTURE_EMBEDDING_MODEL", self.model)
        return self._vectors(data.get("embeddings") or [], len(texts))

    def chat(self, messages: list[dict], max_tokens: int = 300) -> str:
        body = {"model": self.chat_model, "messages": messages, "stream": False,
                "options": {"num_predict": max_tokens}}
        data = self._post("/api/chat", body, "APERTURE_CHAT_MODEL", self.chat_model)
        return str((data.get("message") or {}).get("content") or "").strip()

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict, model_var: str, model: str) -> dict:
        where = f"{self.host}{path}"
        try:
            response = self._http.post(path, json=body)
        except httpx.TimeoutException:
            raise TransientError(f"{where} timed out") from None
        except httpx.TransportError:
            raise TransientError(f"cannot connect to {self.host}", unreachable=(
                f"OLLAMA_HOST: cannot reach Ollama at {self.host}; check the address and that `ollama serve` "
                "is running.")) from None
        status = response.status_code
        if status == 200:
            return response.json()
        try:
            reason = str(response.json().get("error", ""))[:200]
        except ValueError:
            reason = response.text[:200]
        if status == 404:
            raise ConfigError(f"{model_var}: Ollama at {self.host} has no model {model!r} (HTTP 404); "
                              f"run `ollama pull {model}` or pick an installed model.")
        if status in (401, 403):
            raise ConfigError(f"OLLAMA_HOST: {self.host} refused the request (HTTP {status}); point it at an "
                              "Ollama server that accepts this machine.")
        if status == 429 or status >= 500:
            raise TransientError(f"HTTP {status} from {where}", retry_after=parse_retry_after(response.headers))
        if status in (400, 413, 422):
            raise InputError(f"HTTP {status}: {reason}")
        raise ProviderError(f"HTTP {status} from {where}: {reason}")
