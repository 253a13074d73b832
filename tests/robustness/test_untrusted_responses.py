"""Answers from a server are untrusted: an echoed key never reaches an error, a huge body is refused before it
fills memory, and a server that trickles or stalls is cut at the request's deadline, not at a per-read timeout.

Each test runs a tiny real HTTP server on 127.0.0.1 that answers with exactly the misbehaviour under test.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import re
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest

from aperture_resources.ai import AIProviderResource, InputError
from aperture_resources.media_server import EmbyClient, JellyfinClient, MediaServerClient, MediaServerError
from aperture_resources.redaction import redact

KEY = "Zq8vW3/media+key=Hx71&end"  # distinctive, and changed by URL quoting
FRAGMENT = "Zq8vW3"  # any piece of the key left in a message is a leak
CLIENTS = [JellyfinClient, EmbyClient]
MB = 1024 * 1024

Answer = Callable[[BaseHTTPRequestHandler, threading.Event], None]


class Served:
    """A server's URL and how many requests it received."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.requests = 0


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client hanging up mid-answer is what these tests provoke; anything else still prints."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(answer: Answer) -> Iterator[Served]:
    """A threaded HTTP server whose every request is handled by `answer(handler, stopping)`; `stopping` is set
    when the test ends, so trickling answers stop too."""
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_one(self) -> None:
            served.requests += 1
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with contextlib.suppress(OSError):  # the client hung up, which is what most tests want of it
                answer(self, stopping)

        do_GET = do_POST = handle_one

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = QuietServer(("127.0.0.1", 0), Handler)
    served = Served(f"http://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def client(kind: type[MediaServerClient], url: str, **options: object) -> MediaServerClient:
    return kind(url, KEY, **{"retries": 1, "backoff": 0.01, **options})


def failure(call: Callable[[], object]) -> tuple[str, float]:
    """The MediaServerError message `call` raised, and how long it took."""
    started = time.monotonic()
    with pytest.raises(MediaServerError) as caught:
        call()
    return str(caught.value), time.monotonic() - started


# -- secrets ----------------------------------------------------------------------------------------------------
def test_redact_masks_every_spelling_a_server_echoes() -> None:
    secret = 'k/y+"1'
    text = f"a {secret} b {quote(secret, safe='')} c {quote(secret, safe='').lower()} d {json.dumps(secret)}"
    assert redact(text, [secret, ""]) == 'a *** b *** c *** d "***"'
    assert redact("nothing secret here", [secret]) == "nothing secret here"
    assert redact("empty secrets mask nothing", ["", ""]) == "empty secrets mask nothing"


def echo_credentials(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
    """400 with the credentials echoed three ways; with ?pad=N the key starts right at the 200-character cut."""
    header = handler.headers.get("Authorization") or handler.headers.get("X-Emby-Token") or ""
    jellyfin = re.search(r'Token="([^"]*)"', header)
    token = jellyfin.group(1) if jellyfin else header
    pad = "." * (int(handler.path.partition("pad=")[2] or 0))
    body = f"{pad}{token} quoted={quote(token, safe='')} header={json.dumps(header)}"
    send(handler, 400, body.encode(), **{"Content-Type": "text/plain"})


@pytest.mark.parametrize("pad", [0, 195])
@pytest.mark.parametrize("kind", CLIENTS)
def test_an_echoed_api_key_never_reaches_the_error(kind: type[MediaServerClient], pad: int) -> None:
    with serve(echo_credentials) as server, client(kind, server.url) as media:
        message, _ = failure(lambda: media.get_json("/Users", {"pad": pad}))
    assert "HTTP 400" in message and "***" in message  # the answer is shown, with the key masked
    assert FRAGMENT not in message and quote(KEY, safe="")[:6] not in message


def test_an_ai_provider_echoing_the_key_is_redacted_too() -> None:
    def reject(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        given = handler.headers.get("Authorization", "").removeprefix("Bearer ")
        error = {"message": f"{'.' * 190}{given} (also {quote(given, safe='')})", "type": "invalid_request_error"}
        send(handler, 400, json.dumps({"error": error}).encode(), **{"Content-Type": "application/json"})

    with serve(reject) as server:
        ai = AIProviderResource(provider="openai", openai_base_url=f"{server.url}/v1", openai_api_key=KEY, retries=0)
        with pytest.raises(InputError) as caught:
            ai.embedder().embed(["a show"])
    assert "HTTP 400" in str(caught.value) and "***" in str(caught.value)
    assert FRAGMENT not in str(caught.value) and FRAGMENT not in repr(caught.value)


# -- size limit -------------------------------------------------------------------------------------------------
def endless(declared: bool) -> Answer:
    """64 MB of JSON-ish bytes, announced by a Content-Length or just sent until the connection closes."""
    chunk = b"[" + b"0," * 32767 + b"0"

    def answer(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        handler.send_response(200)
        handler.send_header(*("Content-Length", str(64 * MB)) if declared else ("Connection", "close"))
        handler.end_headers()
        for _ in range(64 * MB // len(chunk)):
            if stopping.is_set():
                return
            handler.wfile.write(chunk)

    return answer


def too_big(server: Served) -> str:
    return (f"Jellyfin server at {server.url} sent more than 1 MB for GET /Users; raise "
            "APERTURE_MEDIA_SERVER_MAX_RESPONSE_MB if the library is that large.")


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
def test_an_oversized_answer_fails_fast_in_bounded_memory(declared: bool) -> None:
    with serve(endless(declared)) as server, client(JellyfinClient, server.url, max_response_mb=1,
                                                    retries=3) as media:
        tracemalloc.start()
        try:
            message, seconds = failure(media.users)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert message == too_big(server)
    assert peak < 8 * MB and seconds < 5
    assert server.requests == 1  # the same answer again would be as large: never retried


def test_a_compressed_answer_counts_its_decoded_size() -> None:
    """What fills memory is the decoded body: 1.5 MB of users sent as 0.4 MB of gzip is over a 1 MB limit."""
    users = [{"Id": f"{random.Random(i).getrandbits(128):032x}", "Name": f"user {i}"} for i in range(20000)]
    body = gzip.compress(json.dumps(users).encode())
    assert len(body) < MB < len(gzip.decompress(body))

    def answer(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        send(handler, 200, body, **{"Content-Encoding": "gzip", "Content-Type": "application/json"})

    with serve(answer) as server, client(JellyfinClient, server.url, max_response_mb=1) as media:
        message, _ = failure(media.users)
    assert message == too_big(server)


# -- deadline ---------------------------------------------------------------------------------------------------
def trickle(prefix: bytes, then: bytes) -> Answer:
    """Send `prefix` at once, then `then` one byte every 0.1 s (each read succeeds well within any timeout)."""

    def answer(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        handler.wfile.write(prefix)
        for byte in then:
            if stopping.wait(0.1):
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()

    return answer


HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n"
STALLS = {
    "trickled-body": trickle(HEADERS, b"[" + b" " * 1998 + b"]"),
    "trickled-headers": trickle(b"HTTP/1.1 200 OK\r\n", b"X-Padding: " + b"x" * 2000 + b"\r\n\r\n"),
    "silent": lambda handler, stopping: stopping.wait(30),
}


@pytest.mark.parametrize("stall", STALLS)
@pytest.mark.parametrize("kind", CLIENTS)
def test_a_stalling_server_is_cut_at_the_deadline(kind: type[MediaServerClient], stall: str) -> None:
    with serve(STALLS[stall]) as server, client(kind, server.url, timeout=1.0) as media:
        message, seconds = failure(media.system_info)
    assert message.startswith("APERTURE_MEDIA_SERVER_TIMEOUT_SECONDS (1 s per request) ran out: ")
    assert message.endswith(f"timed out on GET {media.prefix}/System/Info.")
    assert 0.9 < seconds < 1.8


def test_timeouts_are_still_retried_each_with_its_own_deadline() -> None:
    with serve(STALLS["trickled-body"]) as server, client(JellyfinClient, server.url, timeout=0.5,
                                                         retries=3) as media:
        _, seconds = failure(media.system_info)
    assert server.requests == 3 and 1.4 < seconds < 2.5


def test_a_slow_answer_within_the_deadline_and_a_retried_5xx_still_succeed() -> None:
    def answer(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        if server.requests == 1:
            send(handler, 503, b"busy")
        else:
            trickle(HEADERS.replace(b"2000", b"10"), b'[{"Id":1}]')(handler, stopping)  # 1 s of 2 allowed

    with serve(answer) as server, client(JellyfinClient, server.url, timeout=2.0, retries=2) as media:
        assert media.users() == [{"Id": 1}]
    assert server.requests == 2
