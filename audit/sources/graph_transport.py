"""The HTTP transport under msgraph-sdk's client: an httpx *sync* client, each request run on a
worker thread, behind the ``httpx.AsyncClient`` that kiota's request adapter requires.

Why: httpx's async transport reads TLS through anyio's stream (an ``ssl.MemoryBIO`` pumped by
Python for every 64 KiB), where the sync transport reads the SSL socket in C with the GIL
released; on a 100k-user read that difference alone was 0.4-0.8 s of 1.2 s
(benchmarks/RESULTS.md, "Where the SDK fetch loses against httpx"). The thread hop costs tens
of microseconds a page. Concurrent collections stay concurrent: each request has a thread of
the default executor and the sync pool (httpcore's ConnectionPool) is thread-safe.

The worker also shows the start of a 200 answer, as it arrives, to a watch the request's task
set (:func:`watched`): graph.py asks for the next page as soon as this one's nextLink has
arrived, before its users have.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any

import httpx

# What a response's extensions may keep once its connection is handed back to the pool.
KEPT_EXTENSIONS = ("http_version", "reason_phrase")
# Set (by graph.py) around a request whose answer may name the next page before its body has
# all arrived: called on the worker thread with the decoded start of a 200 answer, as it grows,
# until it returns True (decided) or HEAD_LIMIT bytes were seen. The task's context reaches the
# worker thread (asyncio.to_thread copies it), so concurrent requests each see their own.
HEAD_WATCH: ContextVar[Callable[[bytes], bool] | None] = ContextVar("head_watch", default=None)
HEAD_LIMIT = 64 * 1024
# A request on its own task, and what the start of its answer said (None: nothing early).
Fetching = tuple["asyncio.Task[httpx.Response]", "asyncio.Future[str | None]"]


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
            watch = HEAD_WATCH.get() if answer.status_code == 200 else None
            decode = _head_decoder(answer.headers.get("content-encoding", ""))
            chunks: list[bytes] = []
            head = b""
            # raw bytes: the client above decodes any Content-Encoding once, as it would
            for chunk in answer.iter_raw():
                chunks.append(chunk)
                if watch is not None and decode is not None:
                    try:
                        head += decode(chunk)
                    except zlib.error:
                        watch = None  # the client above reports a broken body
                        continue
                    if watch(head) or len(head) > HEAD_LIMIT:
                        watch = None
            raw = b"".join(chunks)
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


def _head_decoder(encoding: str) -> Callable[[bytes], bytes] | None:
    """Decodes the start of a body as it arrives; None for an encoding not followed here."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return bytes
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    return None


def watched(
    send: Coroutine[Any, Any, httpx.Response], decide: Callable[[bytes], tuple[bool, str | None]]
) -> Fetching:
    """`send` started on its own task, and a future settled with what `decide` read off the
    start of its 200 answer (decide: the head so far -> (decided, value)), as soon as it knows."""
    loop = asyncio.get_running_loop()
    early: asyncio.Future[str | None] = loop.create_future()

    def settle(value: str | None) -> None:
        if not early.done():
            early.set_result(value)

    def watch(head: bytes) -> bool:  # on the worker thread
        decided, value = decide(head)
        if decided:
            loop.call_soon_threadsafe(settle, value)
        return decided

    token = HEAD_WATCH.set(watch)
    try:
        task = asyncio.create_task(send)  # the task takes the context, and the watch, now
    finally:
        HEAD_WATCH.reset(token)
    return task, early
