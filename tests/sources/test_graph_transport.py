"""ThreadedTransport: httpx's sync transport on a worker thread behind an httpx.AsyncClient
gives the client what httpx's own async transport gives: status, headers, the body decoded
once, request bodies sent, and concurrent requests answered concurrently."""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from audit.sources.graph_transport import HEAD_WATCH, ThreadedTransport


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(0.5)
        body = gzip.compress(b'{"value":[1,2,3]}')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", "r-1")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Proxy(Handler):
    """A forward proxy that answers itself, noting the absolute URI each request asked for."""

    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Proxy.asked.append(self.path)
        super().do_GET()


def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server() -> Iterator[str]:
    yield from serving(Handler)


@pytest.fixture
def proxy() -> Iterator[str]:
    Proxy.asked = []
    yield from serving(Proxy)


def test_the_body_is_decoded_once_and_headers_kept(server: str) -> None:
    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=ThreadedTransport(True, http2=False)) as client:
            return await client.get(f"{server}/page")

    answer = asyncio.run(run())
    assert answer.status_code == 200
    assert answer.json() == {"value": [1, 2, 3]}
    assert answer.headers["request-id"] == "r-1"
    assert answer.http_version == "HTTP/1.1"


def test_a_request_body_is_sent(server: str) -> None:
    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=ThreadedTransport(True, http2=False)) as client:
            return await client.post(f"{server}/echo", content=b"payload")

    answer = asyncio.run(run())
    assert (answer.status_code, answer.content) == (201, b"payload")


def test_requests_run_concurrently(server: str) -> None:
    async def run() -> float:
        async with httpx.AsyncClient(transport=ThreadedTransport(True, http2=False)) as client:
            started = time.monotonic()
            await asyncio.gather(*(client.get(f"{server}/slow") for _ in range(4)))
            return time.monotonic() - started

    assert asyncio.run(run()) < 1.5  # four half-second answers, not one after another


def test_the_environments_proxy_is_used(
    server: str, proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an httpx client given a transport ignores HTTP(S)_PROXY; the transport's own client must not
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=ThreadedTransport(True, http2=False)) as client:
            return await client.get(f"{server}/through")

    assert asyncio.run(run()).json() == {"value": [1, 2, 3]}
    assert Proxy.asked == [f"{server}/through"]


def test_the_head_watch_sees_the_decoded_start_of_a_gzip_answer(server: str) -> None:
    seen: list[bytes] = []

    def watch(head: bytes) -> bool:
        seen.append(head)
        return b'"value"' in head

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=ThreadedTransport(True, http2=False)) as client:
            token = HEAD_WATCH.set(watch)
            try:
                return await client.get(f"{server}/page")
            finally:
                HEAD_WATCH.reset(token)

    assert asyncio.run(run()).json() == {"value": [1, 2, 3]}
    assert seen and seen[-1].startswith(b'{"value"')
