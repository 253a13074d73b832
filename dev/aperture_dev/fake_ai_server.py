"""A fake OpenAI-compatible + Ollama AI server on 127.0.0.1, for tests and benchmarks.

Real HTTP (the `openai` client uses httpx2, which HTTP mocks don't intercept), stdlib only. Vectors
are hashed bags of words, so they are deterministic and similar texts get similar vectors. Faults
are scripted: a queue of error responses for the next requests, a required API key, unknown models,
a "poison" substring that makes any request containing it fail with 400, and per-request latency.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

EMBEDDING_MODELS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "nomic-embed-text": 768}
CHAT_MODELS = ("gpt-4o-mini", "llama3.2")


@dataclass
class Fault:
    """One scripted error response: the status, an optional Retry-After (seconds) and an error code."""

    status: int
    retry_after: float | None = None
    code: str = ""


def hashed_vector(text: str, dims: int) -> np.ndarray:
    """Signed feature hashing of lower-cased words, L2-normalised."""
    vec = np.zeros(dims, dtype=np.float32)
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        vec[digest % dims] += 1.0 if (digest >> 63) else -1.0
    norm = float(np.linalg.norm(vec))
    if norm == 0:
        vec[0] = 1.0
        return vec
    return vec / norm


class FakeAIServer:
    """Start with `.start()`; point OPENAI_BASE_URL at `.openai_base_url`, OLLAMA_HOST at `.url`.
    `chat_reply(messages)` scripts the chat answer (default: an echo of the last user message, cut
    to max_tokens words)."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        latency_ms: float = 0,
        poison: str = "",
        models: dict[str, int] | None = None,
        ignore_dimensions: bool = False,
        chat_reply: Callable[[list[dict]], str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.latency_ms = latency_ms
        self.poison = poison
        self.models = dict(EMBEDDING_MODELS if models is None else models)
        self.ignore_dimensions = ignore_dimensions
        self.chat_reply = chat_reply
        self.faults: deque[Fault] = deque()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self.random_faults: tuple[float, float, float] = (0.0, 0.0, 0.0)  # error rate, hang rate, hang seconds
        self.random_injected = {"error": 0, "hang": 0}
        self._random = random.Random(0)

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> FakeAIServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True, name="fake-ai-server").start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> FakeAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd, "call start() first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def fail_next(self, count: int, status: int, retry_after: float | None = None, code: str = "") -> None:
        """The next `count` requests get this error instead of an answer."""
        self.faults.extend(Fault(status, retry_after, code) for _ in range(count))

    def set_random_faults(self, error_rate: float = 0.0, timeout_rate: float = 0.0, hang_seconds: float = 2.0,
                          seed: int = 0, status: int = 503) -> None:
        """Seeded random faults on every request: `error_rate` of them answer `status`, `timeout_rate` of them
        hang `hang_seconds` first (past a short client timeout) and then answer normally."""
        self.random_faults = (error_rate, timeout_rate, hang_seconds)
        self._random, self._random_status = random.Random(seed), status

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- behaviour --------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict, dict]:
        """(status, extra headers, JSON body) for one request."""
        with self._lock:
            self.requests.append({"method": method, "path": path, "body": body})
            fault = self.faults.popleft() if self.faults else None
            error_rate, hang_rate, hang_seconds = self.random_faults
            if fault is None and error_rate and self._random.random() < error_rate:
                fault = Fault(self._random_status)
                self.random_injected["error"] += 1
            hang = bool(hang_rate) and self._random.random() < hang_rate
            self.random_injected["hang"] += hang
        if hang:
            time.sleep(hang_seconds)
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        ollama = path.startswith("/api/")
        if fault:
            extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return fault.status, extra, _error(ollama, f"scripted HTTP {fault.status}", fault.code)
        if not ollama and headers.get("authorization") != f"Bearer {self.api_key}":
            # Worse than OpenAI, which masks most of it: echo the whole key, so tests prove it never leaks.
            given = headers.get("authorization", "").removeprefix("Bearer ")
            return 401, {}, _error(False, f"Incorrect API key provided: {given}.", "invalid_api_key")
        if method == "GET" and path == "/v1/models":
            names = [*self.models, *CHAT_MODELS]
            return 200, {}, {"object": "list", "data": [{"id": m, "object": "model"} for m in names]}
        route = {
            "/v1/embeddings": self._embeddings,
            "/api/embed": self._embeddings,
            "/v1/chat/completions": self._chat,
            "/api/chat": self._chat,
        }.get(path)
        if method != "POST" or route is None:
            return 404, {}, _error(ollama, f"no route {method} {path}", "not_found")
        if not isinstance(body, dict):
            return 400, {}, _error(ollama, "request body must be a JSON object", "invalid_json")
        return route(body, ollama)

    def _embeddings(self, body: dict, ollama: bool) -> tuple[int, dict, dict]:
        model = body.get("model", "")
        if model not in self.models:
            message = f'model "{model}" not found, try pulling it first' if ollama else (
                f"The model `{model}` does not exist or you do not have access to it.")
            return 404, {}, _error(ollama, message, "model_not_found")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            return 400, {}, _error(ollama, "input must be a non-empty string or list of non-empty strings", "")
        if self.poison and any(self.poison in t for t in texts):
            return 400, {}, _error(ollama, "Invalid input: the request contains rejected content.", "")
        dims = self.models[model]
        if body.get("dimensions") and not self.ignore_dimensions:
            dims = int(body["dimensions"])
        vectors = [hashed_vector(t, dims) for t in texts]
        if ollama:
            return 200, {}, {"model": model, "embeddings": [v.tolist() for v in vectors]}
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i,
             "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if as_base64 else v.tolist()}
            for i, v in enumerate(vectors)
        ]
        tokens = sum(len(t.split()) for t in texts)
        return 200, {}, {"object": "list", "data": data, "model": model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def _chat(self, body: dict, ollama: bool) -> tuple[int, dict, dict]:
        model = body.get("model", "")
        if model not in CHAT_MODELS:
            return 404, {}, _error(ollama, f'model "{model}" not found', "model_not_found")
        messages = body.get("messages") or []
        if self.chat_reply:
            content = self.chat_reply(messages)
        else:
            last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
            limit = (body.get("options") or {}).get("num_predict") if ollama else body.get("max_tokens")
            content = " ".join(f"Fake reply to: {last}".split()[: int(limit or 64)])
        words = len(content.split())
        if ollama:
            return 200, {}, {"model": model, "message": {"role": "assistant", "content": content}, "done": True}
        return 200, {}, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": words, "total_tokens": 1 + words},
        }


def _error(ollama: bool, message: str, code: str) -> dict:
    if ollama:
        return {"error": message}
    return {"error": {"message": message, "type": code or "invalid_request_error", "param": None, "code": code or None}}


def _handler(server: FakeAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = server.handle(self.command, self.path.split("?")[0], headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
