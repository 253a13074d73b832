"""AI providers: the real local ONNX model, and real HTTP to the fake OpenAI/Ollama server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import time

import numpy as np
import pytest
from aperture_dev.fake_ai_server import FakeAIServer, hashed_vector

from aperture_resources.ai import AIProviderResource, ChatUnavailableError, ProviderError, embed_batches
from aperture_resources.settings import ConfigError

KEY = "sk-test-SECRET-4242"

CRIME_1 = ("Breaking Bad (2008-2013)\nGenres: Crime, Drama, Thriller\nNetwork: AMC\nA high school chemistry "
           "teacher diagnosed with cancer turns to making methamphetamine with a former student.")
CRIME_2 = ("The Wire (2002-2008)\nGenres: Crime, Drama\nNetwork: HBO\nBaltimore's drug trade, seen through the "
           "eyes of dealers and the police detectives trying to bring them down.")
CARTOON = ("Peppa Pig (2004-)\nGenres: Animation, Children, Family\nNetwork: Nick Jr.\nA cheerful little pig "
           "lives with her brother George and her parents and loves jumping in muddy puddles.")


@pytest.fixture
def server():
    with FakeAIServer(api_key=KEY) as fake:
        yield fake


def openai_ai(server: FakeAIServer, **overrides) -> AIProviderResource:
    params = {"provider": "openai", "openai_base_url": server.openai_base_url, "openai_api_key": KEY,
              "retries": 3, "backoff_seconds": 0.01, **overrides}
    return AIProviderResource(**params)


def ollama_ai(server: FakeAIServer, **overrides) -> AIProviderResource:
    return AIProviderResource(provider="ollama", ollama_host=server.url, retries=3, backoff_seconds=0.01,
                              **overrides)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embed_all(ai: AIProviderResource, texts: list[str]):
    embedder = ai.embedder()
    return embed_batches(embedder, texts, embedder.batch_size, embedder.concurrency)


# -- local ------------------------------------------------------------------------------------------
def test_local_model_puts_crime_dramas_together():
    embedder = AIProviderResource().embedder()
    vectors = embedder.embed([CRIME_1, CRIME_2, CARTOON])
    assert embedder.model_key == "local:all-MiniLM-L6-v2"
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    crime, cartoon = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert crime > cartoon + 0.2, (crime, cartoon)
    # Batching and padding don't change a text's vector.
    np.testing.assert_allclose(embedder.embed([CARTOON])[0], vectors[2], atol=1e-4)


def test_local_model_truncates_long_texts_and_has_no_chat():
    ai = AIProviderResource(provider="local")
    assert ai.embedder().embed([CRIME_1 * 40]).shape == (1, 384)
    with pytest.raises(ChatUnavailableError, match="no chat model"):
        ai.chat([{"role": "user", "content": "hi"}])


def test_local_rejects_other_models_and_sizes():
    with pytest.raises(ConfigError, match="APERTURE_EMBEDDING_MODEL"):
        AIProviderResource(model="nomic-embed-text").embedder()
    with pytest.raises(ConfigError, match="APERTURE_EMBEDDING_DIMENSIONS"):
        AIProviderResource(dimensions=768).embedder()
    with pytest.raises(ConfigError, match="APERTURE_EMBEDDING_PROVIDER"):
        AIProviderResource(provider="claude").model_key()


# -- OpenAI-compatible ------------------------------------------------------------------------------
def test_openai_embeds_a_batch_in_one_base64_request(server):
    ai = openai_ai(server)
    vectors, failures, requests = embed_all(ai, [CRIME_1, CRIME_2, CARTOON])
    assert (failures, requests, server.request_count) == ({}, 1, 1)
    body = server.requests[0]["body"]
    assert body["encoding_format"] == "base64" and body["input"] == [CRIME_1, CRIME_2, CARTOON]
    np.testing.assert_allclose(vectors[2], hashed_vector(CARTOON, 1536), atol=1e-6)
    assert ai.model_key() == ai.embedder().model_key == "openai:text-embedding-3-small"


def test_openai_requests_configured_dimensions(server):
    ai = openai_ai(server, dimensions=64)
    vectors, _, _ = embed_all(ai, [CRIME_1])
    assert vectors[0].shape == (64,)
    assert server.requests[0]["body"]["dimensions"] == 64
    assert ai.model_key() == "openai:text-embedding-3-small:64"


def test_batches_run_concurrently(server):
    server.latency_ms = 200
    ai = openai_ai(server, batch_size=2, concurrency=4)
    started = time.perf_counter()
    vectors, _, requests = embed_all(ai, [f"show {i}" for i in range(8)])
    assert len(vectors) == 8 and requests == 4
    assert time.perf_counter() - started < 0.6  # four 200 ms requests in parallel, not 800 ms in a row


def test_wrong_key_stops_at_once_naming_openai_api_key(server):
    ai = openai_ai(server, openai_api_key="sk-wrong-SECRET-9999")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY") as info:
        embed_all(ai, [CRIME_1, CRIME_2])
    assert "SECRET" not in str(info.value)
    assert server.request_count == 1


def test_missing_key_for_openai_itself():
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        AIProviderResource(provider="openai").embedder()


def test_unknown_model_names_aperture_embedding_model(server):
    with pytest.raises(ConfigError, match=r"APERTURE_EMBEDDING_MODEL.*'no-such-model'"):
        embed_all(openai_ai(server, model="no-such-model"), [CRIME_1])
    assert server.request_count == 1


def test_unreachable_host_names_openai_base_url():
    ai = AIProviderResource(provider="openai", openai_base_url=f"http://127.0.0.1:{closed_port()}/v1",
                            openai_api_key=KEY, retries=1, backoff_seconds=0.01)
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL: cannot reach"):
        embed_all(ai, [CRIME_1])


def test_dimension_mismatch_names_aperture_embedding_dimensions():
    expected = r"APERTURE_EMBEDDING_DIMENSIONS.*1536-dimensional.*64 were expected"
    with FakeAIServer(api_key=KEY, ignore_dimensions=True) as fake, pytest.raises(ConfigError, match=expected):
        embed_all(openai_ai(fake, dimensions=64), [CRIME_1])
    # A model of known size that answers with another size is caught too.
    expected = r"APERTURE_EMBEDDING_DIMENSIONS.*set it to 32"
    with FakeAIServer(api_key=KEY, models={"text-embedding-3-small": 32}) as fake, \
            pytest.raises(ConfigError, match=expected):
        embed_all(openai_ai(fake), [CRIME_1])


def test_rate_limit_is_retried_honouring_retry_after(server):
    server.fail_next(2, 429, retry_after=0.2, code="rate_limit_exceeded")
    ai = openai_ai(server, backoff_seconds=30)  # exponential backoff would take far longer than the hint
    started = time.perf_counter()
    vectors, failures, requests = embed_all(ai, [CRIME_1, CRIME_2])
    elapsed = time.perf_counter() - started
    assert (len(vectors), failures, requests, server.request_count) == (2, {}, 3, 3)
    assert 0.4 <= elapsed < 5


def test_server_errors_are_retried_then_succeed(server):
    server.fail_next(2, 503)
    vectors, failures, requests = embed_all(openai_ai(server), [CRIME_1])
    assert (len(vectors), failures, requests) == (1, {}, 3)


def test_persistent_server_errors_end_with_an_error_not_a_loop(server):
    server.fail_next(100, 500)
    with pytest.raises(ProviderError, match=r"every request failed.*HTTP 500"):
        embed_all(openai_ai(server, retries=2), [CRIME_1])
    assert server.request_count == 3


def test_insufficient_quota_stops_at_once(server):
    server.fail_next(5, 429, code="insufficient_quota")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY has no quota left"):
        embed_all(openai_ai(server), [CRIME_1, CRIME_2])
    assert server.request_count == 1


def test_poisoned_text_is_isolated_and_the_rest_land():
    texts = [f"harmless show number {i}" for i in range(16)]
    texts[11] = "this one carries POISON inside"
    with FakeAIServer(api_key=KEY, poison="POISON") as fake:
        vectors, failures, requests = embed_all(openai_ai(fake, batch_size=8), texts)
        assert sorted(vectors) == [i for i in range(16) if i != 11]
        assert list(failures) == [11] and "HTTP 400" in failures[11] and "rejected content" in failures[11]
        # One clean batch + bisection of the other (8 -> 4 -> 2 -> 1): 1 + 7 requests, no retries of a 400.
        assert requests == fake.request_count == 8


def test_provider_rejecting_everything_stops_early():
    texts = [f"POISON {i}" for i in range(64)]
    with FakeAIServer(api_key=KEY, poison="POISON") as fake:
        with pytest.raises(ProviderError, match="rejects every text"):
            embed_all(openai_ai(fake, batch_size=64, concurrency=1), texts)
        assert fake.request_count < 20


def test_openai_chat(server):
    ai = openai_ai(server, chat_model="gpt-4o-mini")
    reply = ai.chat([{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Why would I like The Wire?"}], max_tokens=5)
    assert reply == "Fake reply to: Why would"
    assert server.requests[0]["path"] == "/v1/chat/completions"
    assert server.requests[0]["body"]["max_tokens"] == 5
    with pytest.raises(ConfigError, match="APERTURE_CHAT_MODEL"):
        openai_ai(server, chat_model="gpt-nope").chat([{"role": "user", "content": "hi"}])


def test_api_key_never_appears_in_errors_or_logs(server, caplog):
    caplog.set_level(logging.DEBUG)
    problems = []
    for overrides in ({"openai_api_key": KEY + "-WRONG"}, {"model": "missing"}):
        try:
            embed_all(openai_ai(server, **overrides), [CRIME_1])
        except ConfigError as exc:
            problems.append(exc)
    server.fail_next(1, 500)
    server.poison = "POISON"
    _, failures, _ = embed_all(openai_ai(server), [CRIME_1, "POISON " + KEY])
    assert len(problems) == 2 and failures
    text = " ".join(map(str, problems)) + repr(failures) + caplog.text + repr(openai_ai(server))
    assert "SECRET" not in text


# -- Ollama -----------------------------------------------------------------------------------------
def test_ollama_embeds_a_batch_natively(server):
    ai = ollama_ai(server)
    vectors, failures, requests = embed_all(ai, [CRIME_1, CRIME_2, CARTOON])
    assert (len(vectors), failures, requests) == (3, {}, 1)
    request = server.requests[0]
    assert request["path"] == "/api/embed" and request["body"]["input"] == [CRIME_1, CRIME_2, CARTOON]
    assert vectors[0].shape == (768,)
    assert ai.embedder().model_key == ai.model_key() == "ollama:nomic-embed-text"
    np.testing.assert_allclose(vectors[1], hashed_vector(CRIME_2, 768), atol=1e-6)


def test_ollama_errors_name_the_setting(server):
    with pytest.raises(ConfigError, match=r"APERTURE_EMBEDDING_MODEL.*ollama pull"):
        embed_all(ollama_ai(server, model="not-pulled"), [CRIME_1])
    host = f"127.0.0.1:{closed_port()}"  # Ollama's own form, without a scheme
    with pytest.raises(ConfigError, match="OLLAMA_HOST: cannot reach"):
        embed_all(AIProviderResource(provider="ollama", ollama_host=host, retries=0), [CRIME_1])


def test_ollama_retries_rate_limits(server):
    server.fail_next(1, 429, retry_after=0.05)
    vectors, _, requests = embed_all(ollama_ai(server), [CRIME_1])
    assert (len(vectors), requests) == (1, 2)


def test_ollama_chat(server):
    reply = ollama_ai(server).chat([{"role": "user", "content": "Recommend something"}], max_tokens=3)
    assert reply == "Fake reply to:"
    assert server.requests[0]["body"]["options"] == {"num_predict": 3}
    assert server.requests[0]["body"]["model"] == "llama3.2"
