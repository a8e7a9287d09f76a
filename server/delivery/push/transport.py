"""``WebPushSender``: pushes on the network, pooled HTTP (aiohttp) on an event loop of its own thread.

Why this shape (measured, see ``bench/`` and docs/performance-delivery.md): the VAPID JWT is
signed once per push-service origin and reused until close to expiry (``vapid.VapidCache``);
one aiohttp session keeps pooled keep-alive connections per origin and sends up to
``concurrency`` pushes at once on an event loop in its own thread.

``prepare`` encrypts a batch in the calling thread (the dispatcher's), so the encryption of
batch N+1 overlaps the network exchanges of batch N on the loop thread (the ECDH itself runs
outside the GIL); ``start`` hands it to a fixed set of ``concurrency`` lanes on the loop
thread, which pull messages from one queue, and returns a future of one ``SendResult`` per
message, in order (the ``Sender`` protocol).

Safety: redirects are never followed, proxies from the environment are ignored, connect and
read have timeouts, and the resolver refuses non-public addresses at connect time (so a DNS
answer that changed after the endpoint check cannot point us inside the network).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import hdrs
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from py_vapid import Vapid02

from server.delivery.endpoints import LOOPBACK_HOSTS, public_address

from server.delivery.push import Message
from server.delivery.push.crypto import encrypt
from server.delivery.push.outcomes import FAILED, HELD, RETRY, SendResult, classify
from server.delivery.push.vapid import VapidCache

log = logging.getLogger(__name__)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: the VAPID ``aud`` and the connection pool key."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class PublicOnlyResolver(AbstractResolver):
    """Resolve with the default resolver, keeping public addresses only.

    Loopback names pass only when ``allow_loopback`` is set (``PUSHCART_INSECURE_ENDPOINTS``).
    """

    def __init__(self, allow_loopback: bool = False, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()
        self._allow_loopback = allow_loopback

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        """Addresses of ``host`` that we may connect to; OSError when none is left."""
        infos = await self._inner.resolve(host, port, family)
        if self._allow_loopback and host.lower() in LOOPBACK_HOSTS:
            return infos
        kept = [info for info in infos if public_address(info["host"])]
        if not kept:
            raise OSError(f"{host} resolves to no public address")
        return kept

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


class PreparedBatch:
    """A batch ready to send: its messages, their encrypted bodies, the results so far, its future."""

    __slots__ = ("messages", "bodies", "results", "left", "future")

    def __init__(self, messages: Sequence[Message], bodies: list[bytes | None], results: list[SendResult | None],
                 future: concurrent.futures.Future[list[SendResult]]) -> None:
        self.messages = messages
        self.bodies = bodies
        self.results = results
        self.left = sum(1 for r in results if r is None)
        self.future = future

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class WebPushSender:
    """Sends batches of ``Message`` concurrently from an event loop in a background thread."""

    def __init__(self, vapid: Vapid02, subject: str, *, concurrency: int = 32,
                 connect_timeout: float = 5.0, read_timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None, allow_loopback: bool = False,
                 time_source: Callable[[], float] = time.time,
                 observe: Callable[[str, float], None] | None = None) -> None:
        self.vapid_cache = VapidCache(vapid, subject, time_source=time_source)
        self._observe = observe  # (outcome, seconds) of each exchange with a push service: metrics
        self._concurrency = max(1, concurrency)
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                              sock_connect=connect_timeout, sock_read=read_timeout)
        # True: aiohttp's verifying default context (``ssl.create_default_context()``), which it
        # builds once at import; a second one here cost each start-up another load of the CA store.
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._allow_loopback = allow_loopback
        self._time = time_source
        self._held: dict[str, float] = {}  # origin -> wall time before which we do not send
        self._session: aiohttp.ClientSession | None = None
        # Loop-thread state: the queue of (job, index) the lanes pull from, the lanes, open jobs.
        self._queue: asyncio.Queue[tuple[PreparedBatch, int]] | None = None
        self._lanes: list[asyncio.Task[None]] = []
        self._jobs: set[PreparedBatch] = set()
        self._loop = _new_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pushcart-sender", daemon=True)
        self._thread.start()
        self._closed = False

    def prepare(self, messages: Sequence[Message]) -> PreparedBatch:
        """Encrypt ``messages`` in the calling thread; ``start`` sends them.

        The dispatcher prepares batch N+1 while batch N is on the network and starts it once
        N is recorded: the encryption overlaps the network, the sends never do.
        """
        bodies: list[bytes | None] = []
        results: list[SendResult | None] = []
        for message in messages:
            try:
                bodies.append(encrypt(message))
                results.append(None)
            except Exception as exc:  # a malformed key stored despite validation: our data, not theirs
                log.warning("push %s: encryption failed: %s", message.push_id, type(exc).__name__)
                bodies.append(None)
                results.append(SendResult(FAILED, None, f"encryption failed: {type(exc).__name__}"))
        return PreparedBatch(messages, bodies, results, concurrent.futures.Future())

    def start(self, batch: PreparedBatch) -> concurrent.futures.Future[list[SendResult]]:
        """Send a prepared batch on the loop thread (at most ``concurrency`` at a time)."""
        if self._closed:
            raise RuntimeError("sender is closed")
        if batch.left == 0:
            batch.future.set_result(batch.results)  # type: ignore[arg-type]  (every result is set)
        else:
            self._loop.call_soon_threadsafe(self._enqueue, batch)
        return batch.future

    def close(self) -> None:
        """Close the connections and stop the loop thread (batches still queued fail)."""
        if self._closed:
            return
        self._closed = True
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # -- on the loop thread ------------------------------------------------------------------

    def _enqueue(self, job: PreparedBatch) -> None:
        if self._queue is None:
            connector = aiohttp.TCPConnector(limit=self._concurrency, ssl=self._ssl, keepalive_timeout=60,
                                             ttl_dns_cache=300,
                                             resolver=PublicOnlyResolver(self._allow_loopback))
            # No compression asked for (Accept-Encoding is skipped) and none undone.
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, timeout=self._timeout, auto_decompress=False,
                skip_auto_headers=(hdrs.ACCEPT_ENCODING,))
            self._queue = asyncio.Queue()
            self._lanes = [self._loop.create_task(self._lane(self._session, self._queue))
                           for _ in range(self._concurrency)]
        if self._closed:
            job.fail(RuntimeError("sender is closed"))
            return
        self._jobs.add(job)
        for i, result in enumerate(job.results):
            if result is None:
                self._queue.put_nowait((job, i))

    async def _lane(self, session: aiohttp.ClientSession, queue: asyncio.Queue[tuple[PreparedBatch, int]]) -> None:
        while True:
            job, i = await queue.get()
            if job.future.done():
                continue  # failed earlier: its other messages are not sent
            try:
                result = await self._send_one(session, job.messages[i], job.bodies[i])  # type: ignore[arg-type]
            except Exception as exc:  # a bug, not a push service's answer: the batch's caller sees it
                self._jobs.discard(job)
                job.fail(exc)
                continue
            job.results[i] = result
            job.left -= 1
            if job.left == 0:
                self._jobs.discard(job)
                if not job.future.done():
                    job.future.set_result(job.results)  # type: ignore[arg-type]

    async def _shutdown(self) -> None:
        for lane in self._lanes:
            lane.cancel()
        if self._lanes:
            await asyncio.gather(*self._lanes, return_exceptions=True)
        for job in list(self._jobs):
            job.fail(RuntimeError("sender closed before the batch was sent"))
        self._jobs.clear()
        if self._session is not None:
            await self._session.close()

    def _record(self, outcome: str, started: float) -> None:
        if self._observe is not None:
            self._observe(outcome, time.perf_counter() - started)

    async def _send_one(self, session: aiohttp.ClientSession, message: Message, body: bytes) -> SendResult:
        origin = origin_of(message.endpoint)
        held_until = self._held.get(origin)
        if held_until is not None:
            wait = held_until - self._time()
            if wait > 0:
                return SendResult(HELD, None, "origin rate limited", wait)
            del self._held[origin]
        headers = {
            "Authorization": self.vapid_cache.header(origin),
            "TTL": str(max(0, int(message.ttl))),
            "Urgency": message.urgency,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        if message.topic:
            headers["Topic"] = message.topic
        started = time.perf_counter()
        try:
            async with session.post(message.endpoint, data=body, headers=headers, allow_redirects=False) as resp:
                result = classify(resp.status, resp.headers.get("Retry-After"), await resp.read(), self._time())
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            self._record(RETRY, started)
            return SendResult(RETRY, None, "timeout")
        except (aiohttp.ClientError, OSError) as exc:
            self._record(RETRY, started)
            return SendResult(RETRY, None, f"connection error: {type(exc).__name__}")
        self._record(result.outcome, started)
        if result.http_status == 429:
            self._held[origin] = self._time() + (result.retry_after if result.retry_after is not None else 60.0)
        if result.http_status in (400, 401, 403):
            log.error("push %s: push service refused our request (%s): VAPID key or encryption",
                      message.push_id, result.http_status)
        return result


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # optional: plain asyncio works too
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def sender_options(config: Any) -> dict[str, Any]:
    """The ``WebPushSender`` keyword options from the app config."""
    return {
        "concurrency": int(config.get("PUSH_CONCURRENCY", 32)),
        "connect_timeout": float(config.get("PUSH_CONNECT_TIMEOUT", 5.0)),
        "read_timeout": float(config.get("PUSH_READ_TIMEOUT", 10.0)),
        "allow_loopback": bool(config.get("PUSHCART_INSECURE_ENDPOINTS")),
    }
