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

import httpx
import pytest

from audit.sources.graph_transport import ThreadedTransport


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


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


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
