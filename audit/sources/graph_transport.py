"""The HTTP transport under msgraph-sdk's client: an httpx *sync* client, each request run on a
worker thread, behind the ``httpx.AsyncClient`` that kiota's request adapter requires.

Why: httpx's async transport reads TLS through anyio's stream (an ``ssl.MemoryBIO`` pumped by
Python for every 64 KiB), where the sync transport reads the SSL socket in C with the GIL
released; on a 100k-user read that difference alone was 0.4-0.8 s of 1.2 s
(benchmarks/RESULTS.md, "Where the SDK fetch loses against httpx"). The thread hop costs tens
of microseconds a page. Concurrent collections stay concurrent: each request has a thread of
the default executor and the sync pool (httpcore's ConnectionPool) is thread-safe.
"""

from __future__ import annotations

import asyncio
import ssl

import httpx

# What a response's extensions may keep once its connection is handed back to the pool.
KEPT_EXTENSIONS = ("http_version", "reason_phrase")


class ThreadedTransport(httpx.AsyncBaseTransport):
    """An async transport that sends through a sync ``httpx.Client`` on a worker thread and
    hands back the whole body (Graph pages are read whole anyway)."""

    def __init__(self, verify: ssl.SSLContext | bool, http2: bool) -> None:
        # A sync client rather than a bare transport: it honours HTTPS_PROXY / NO_PROXY as any
        # httpx client does (an httpx client given a transport ignores the environment's
        # proxies, and Graph is often reached through one). It follows no redirect and keeps
        # no auth: the client above does that.
        self.sync = httpx.Client(verify=verify, http2=http2, follow_redirects=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        plain = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            content=content,
            extensions=request.extensions,
        )
        return await asyncio.to_thread(self._send, plain)

    def _send(self, request: httpx.Request) -> httpx.Response:
        answer = self.sync.send(request, stream=True)
        try:
            # raw bytes: the client above decodes any Content-Encoding once, as it would
            raw = b"".join(answer.iter_raw())
        finally:
            answer.close()
        return httpx.Response(
            answer.status_code,
            headers=answer.headers,
            stream=httpx.ByteStream(raw),
            extensions={k: v for k, v in answer.extensions.items() if k in KEPT_EXTENSIONS},
        )

    async def aclose(self) -> None:
        await asyncio.to_thread(self.sync.close)
