"""The sender: RFC 8291 encryption (pywebpush), RFC 8292 VAPID (py-vapid) and pooled HTTP (aiohttp).

Why this shape (measured, see DESIGN.md and ``bench/``): the VAPID JWT is signed once per
push-service origin and reused until close to expiry; one aiohttp session keeps pooled
keep-alive connections per origin and sends up to ``concurrency`` pushes at once on an event
loop in its own thread. The dispatcher hands over a batch with ``send_many`` and gets one
``SendResult`` per message back, in order.

Safety: redirects are never followed, proxies from the environment are ignored, connect and
read have timeouts, and the resolver refuses non-public addresses at connect time (so a DNS
answer that changed after the endpoint check cannot point us inside the network).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import ipaddress
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
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from py_vapid import Vapid02
from pywebpush import WebPusher

from .endpoints import LOOPBACK_HOSTS

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


def classify(status: int, retry_after: str | None, body: str, wall_now: float) -> SendResult:
    """Turn a push service's answer into a ``SendResult`` (DESIGN.md: responses are facts)."""
    if 200 <= status < 300:
        return SendResult(SENT, status)
    snippet = " ".join(body.split())[:200]
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


def encrypt(message: Message) -> bytes:
    """The aes128gcm body of ``message`` (pywebpush's encoder: a fresh ECDH key per message)."""
    pusher = WebPusher({"endpoint": message.endpoint, "keys": {"p256dh": message.p256dh, "auth": message.auth}})
    return pusher.encode(message.payload, "aes128gcm")["body"]


class PublicOnlyResolver(AbstractResolver):
    """Resolve with the default resolver, keeping public addresses only.

    Loopback names pass only when ``allow_loopback`` is set (``PUSHCART_INSECURE_ENDPOINTS``).
    """

    def __init__(self, allow_loopback: bool = False) -> None:
        self._inner = DefaultResolver()
        self._allow_loopback = allow_loopback

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        """Addresses of ``host`` that we may connect to; OSError when none is left."""
        infos = await self._inner.resolve(host, port, family)
        if self._allow_loopback and host.lower() in LOOPBACK_HOSTS:
            return infos
        kept = []
        for info in infos:
            ip = ipaddress.ip_address(info["host"].split("%", 1)[0])
            if ip.is_global:
                kept.append(info)
        if not kept:
            raise OSError(f"{host} resolves to no public address")
        return kept

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


class WebPushSender:
    """Sends batches of ``Message`` concurrently from an event loop in a background thread."""

    def __init__(self, vapid: Vapid02, subject: str, *, concurrency: int = 32,
                 connect_timeout: float = 5.0, read_timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None, allow_loopback: bool = False,
                 time_source: Callable[[], float] = time.time,
                 observe: Callable[[str, float], None] | None = None) -> None:
        self.vapid_cache = VapidCache(vapid, subject, time_source=time_source)
        self._observe = observe  # (outcome, seconds) of each exchange with a push service: metrics
        self._concurrency = concurrency
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                              sock_connect=connect_timeout, sock_read=read_timeout)
        self._ssl = ssl_context if ssl_context is not None else ssl.create_default_context()
        self._allow_loopback = allow_loopback
        self._time = time_source
        self._held: dict[str, float] = {}  # origin -> wall time before which we do not send
        self._session: aiohttp.ClientSession | None = None
        self._loop = _new_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pushcart-sender", daemon=True)
        self._thread.start()
        self._closed = False

    def send_many(self, messages: Sequence[Message]) -> list[SendResult]:
        """Send ``messages`` (at most ``concurrency`` at a time); one result per message, in order."""
        return self.submit(messages).result()

    def submit(self, messages: Sequence[Message]) -> concurrent.futures.Future[list[SendResult]]:
        """Start sending ``messages`` on the loop thread; the future gives ``send_many``'s result."""
        if self._closed:
            raise RuntimeError("sender is closed")
        if not messages:
            done: concurrent.futures.Future[list[SendResult]] = concurrent.futures.Future()
            done.set_result([])
            return done
        return asyncio.run_coroutine_threadsafe(self._send_all(messages), self._loop)

    def close(self) -> None:
        """Close the connections and stop the loop thread."""
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._concurrency, ssl=self._ssl, keepalive_timeout=60,
                                             ttl_dns_cache=300,
                                             resolver=PublicOnlyResolver(self._allow_loopback))
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, timeout=self._timeout,
                                                  auto_decompress=False)
        return self._session

    async def _send_all(self, messages: Sequence[Message]) -> list[SendResult]:
        # A fixed set of lanes pulling from the batch: ``concurrency`` tasks instead of one per message.
        session = await self._ensure_session()
        results: list[SendResult | None] = [None] * len(messages)
        indexes = iter(range(len(messages)))

        async def lane() -> None:
            for i in indexes:
                results[i] = await self._send_one(session, messages[i])

        await asyncio.gather(*(lane() for _ in range(min(self._concurrency, len(messages)))))
        return results  # type: ignore[return-value]  (every index was filled)

    def _record(self, outcome: str, started: float) -> None:
        if self._observe is not None:
            self._observe(outcome, time.perf_counter() - started)

    async def _send_one(self, session: aiohttp.ClientSession, message: Message) -> SendResult:
        origin = origin_of(message.endpoint)
        held_until = self._held.get(origin)
        if held_until is not None:
            wait = held_until - self._time()
            if wait > 0:
                return SendResult(HELD, None, "origin rate limited", wait)
            del self._held[origin]
        try:
            body = encrypt(message)
        except Exception as exc:  # a malformed key stored despite validation: our data, not theirs
            log.warning("push %s: encryption failed: %s", message.push_id, type(exc).__name__)
            return SendResult(FAILED, None, f"encryption failed: {type(exc).__name__}")
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
                text = await resp.text(errors="replace")
                result = classify(resp.status, resp.headers.get("Retry-After"), text, self._time())
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
