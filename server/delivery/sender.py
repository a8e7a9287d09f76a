"""The sender: RFC 8291 encryption (http_ece, as pywebpush calls it), RFC 8292 VAPID (py-vapid), pooled HTTP (aiohttp).

Why this shape (measured, see DESIGN.md and ``bench/``): the VAPID JWT is signed once per
push-service origin and reused until close to expiry; one aiohttp session keeps pooled
keep-alive connections per origin and sends up to ``concurrency`` pushes at once on an event
loop in its own thread. The dispatcher hands over a batch with ``submit`` (or ``send_many``)
and gets one ``SendResult`` per message back, in order.

``prepare`` encrypts a batch in the calling thread (the dispatcher's), so the encryption of
batch N+1 overlaps the network exchanges of batch N on the loop thread (the ECDH itself runs
outside the GIL); ``start`` hands it to a fixed set of ``concurrency`` lanes on the loop
thread, which pull messages from one queue.

Safety: redirects are never followed, proxies from the environment are ignored, connect and
read have timeouts, and the resolver refuses non-public addresses at connect time (so a DNS
answer that changed after the endpoint check cannot point us inside the network).
"""
from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import email.utils
import functools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import http_ece
from aiohttp import hdrs
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from server.delivery.endpoints import LOOPBACK_HOSTS, public_address

log = logging.getLogger(__name__)

SENT, GONE, RETRY, FAILED, HELD = "sent", "gone", "retry", "failed", "held"
VAPID_LIFETIME = 12 * 3600  # RFC 8292 allows 24 h; half leaves room for clock skew
VAPID_RENEW_BEFORE = 3600  # re-sign an hour before expiry, so no request carries a stale JWT
MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class Message:
    """One push to send: where, to whom (keys), what (plaintext payload) and how (headers)."""

    push_id: int
    endpoint: str
    p256dh: str
    auth: str
    payload: bytes
    ttl: int
    urgency: str = "normal"
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the push service said. ``outcome`` is sent, gone, retry, failed or held.

    ``held`` means not sent at all: the origin asked us to wait (429) earlier in this batch.
    ``retry_after`` is in seconds when the push service gave one.
    """

    outcome: str
    http_status: int | None = None
    error: str | None = None
    retry_after: float | None = None


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: the VAPID ``aud`` and the connection pool key."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def parse_retry_after(value: str | None, wall_now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - wall_now)


def classify(status: int, retry_after: str | None, body: bytes, wall_now: float) -> SendResult:
    """Turn a push service's answer into a ``SendResult`` (DESIGN.md: responses are facts).

    The body is decoded only for the answers whose error quotes it (not on the 2xx hot path).
    """
    if 200 <= status < 300:
        return SendResult(SENT, status)
    snippet = " ".join(body[:1024].decode("utf-8", "replace").split())[:200]
    if status in (404, 410):
        return SendResult(GONE, status, "subscription gone")
    if status == 413:
        return SendResult(FAILED, status, "payload too large")
    if status == 429:
        return SendResult(RETRY, status, "rate limited", parse_retry_after(retry_after, wall_now))
    if status >= 500:
        return SendResult(RETRY, status, f"push service error {status}")
    if 300 <= status < 400:
        return SendResult(FAILED, status, f"redirect {status} not followed")
    if status in (400, 401, 403):
        # Our fault (VAPID key or signature, encryption, headers): the subscription stays.
        return SendResult(FAILED, status, f"rejected ({status}), check VAPID and encryption: {snippet}"[:MAX_ERROR_CHARS])
    return SendResult(FAILED, status, f"unexpected status {status}: {snippet}"[:MAX_ERROR_CHARS])


class VapidCache:
    """VAPID ``Authorization`` headers, one per push-service origin, reused until near expiry.

    Each origin gets a fresh claims dict (py-vapid and pywebpush mutate the dict they are
    given); ``exp`` is wall-clock time because the push service checks it against its clock.
    """

    def __init__(self, vapid: Vapid02, subject: str, *, lifetime: int = VAPID_LIFETIME,
                 renew_before: int = VAPID_RENEW_BEFORE, time_source: Callable[[], float] = time.time) -> None:
        if not subject:
            raise ValueError("VAPID_SUBJECT is required to send pushes")
        self._vapid = vapid
        self._subject = subject
        self._lifetime = lifetime
        self._renew_before = renew_before
        self._time = time_source
        self._headers: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.signed = 0  # how many JWTs were signed (the tests check it stays small)

    def header(self, origin: str) -> str:
        """The ``Authorization: vapid t=...,k=...`` value for ``origin``."""
        now = self._time()
        with self._lock:
            cached = self._headers.get(origin)
            if cached is not None and cached[1] - self._renew_before > now:
                return cached[0]
            exp = int(now) + self._lifetime
            claims = {"aud": origin, "sub": self._subject, "exp": exp}
            value = self._vapid.sign(claims)["Authorization"]
            self._headers[origin] = (value, exp)
            self.signed += 1
            return value


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@functools.lru_cache(maxsize=4096)
def receiver_keys(p256dh: str, auth: str) -> tuple[ec.EllipticCurvePublicKey, bytes]:
    """A subscription's static keys, decoded and the point checked once (it is on P-256)."""
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url_decode(p256dh)), _b64url_decode(auth)


def encrypt(message: Message) -> bytes:
    """The aes128gcm body of ``message`` (RFC 8291), with a fresh ephemeral ECDH key per message.

    The same ``http_ece.encrypt`` call pywebpush's ``WebPusher.encode(data, "aes128gcm")``
    makes (random salt, 4096-byte record, the ephemeral public key as key id), minus that
    class's per-message copy and parse of the subscription's keys: ``receiver_keys`` decodes
    them once per subscription. Only the receiver's static key is reused, never ours.
    """
    receiver, auth_secret = receiver_keys(message.p256dh, message.auth)
    return http_ece.encrypt(message.payload, private_key=ec.generate_private_key(ec.SECP256R1()),
                            dh=receiver, auth_secret=auth_secret, version="aes128gcm")


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

    def send_many(self, messages: Sequence[Message]) -> list[SendResult]:
        """Send ``messages`` (at most ``concurrency`` at a time); one result per message, in order."""
        return self.submit(messages).result()

    def submit(self, messages: Sequence[Message]) -> concurrent.futures.Future[list[SendResult]]:
        """Encrypt ``messages`` here, then send them on the loop thread; the future gives
        ``send_many``'s result."""
        return self.start(self.prepare(messages))

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
