"""``WebPushSender``: pushes on the network, pooled HTTP (libcurl, through pycurl) on a thread of its own.

Why this shape (measured, see ``bench/`` and docs/performance-delivery.md): the VAPID JWT is
signed once per (key, push-service origin) and reused until close to expiry (``vapid.VapidCache``);
one libcurl multi handle keeps pooled keep-alive connections per origin and runs up to
``concurrency`` exchanges at once on the sender's thread. libcurl does the HTTP and the TLS
in C, outside the interpreter lock: an exchange costs about a fifth of the CPU it cost with
aiohttp, and that CPU is what one sending process is bound by.

``prepare`` encrypts a batch in the calling thread (the dispatcher's), so the encryption of
batch N+1 overlaps the network exchanges of batch N; ``start`` queues a prepared batch for the
sender's thread and returns a future of one ``SendResult`` per message, in order (the
``Sender`` protocol).

Safety: redirects are never followed, proxies from the environment are ignored (``PROXY`` is
set empty), only http and https are spoken, connect and read have timeouts, an answer's body
is kept to its first kilobyte, and every socket is opened through ``may_connect``: libcurl
hands over the address it is about to connect to, and a non-public one is refused, so a DNS
answer that changed after the endpoint check cannot point us inside the network.
"""
from __future__ import annotations

import collections
import concurrent.futures
import logging
import math
import os
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import pycurl
from py_vapid import Vapid02

from server.delivery.endpoints import LOOPBACK_HOSTS, public_address
from server.delivery.push import Message
from server.delivery.push.crypto import encrypt
from server.delivery.push.outcomes import FAILED, HELD, RETRY, SendResult, classify
from server.delivery.push.vapid import VapidCache

log = logging.getLogger(__name__)

MAX_BODY_KEPT = 1024  # of a push service's answer: enough for the error text (``classify``)
USER_AGENT = "Pushcart"

# libcurl's error codes that name what went wrong with a connection (the rest: their number).
_CURL_ERRORS = {
    pycurl.E_COULDNT_RESOLVE_HOST: "host not resolved",
    pycurl.E_COULDNT_CONNECT: "could not connect",
    pycurl.E_SSL_CONNECT_ERROR: "TLS handshake failed",
    pycurl.E_PEER_FAILED_VERIFICATION: "TLS certificate not trusted",
    pycurl.E_GOT_NOTHING: "empty reply",
    pycurl.E_SEND_ERROR: "send failed",
    pycurl.E_RECV_ERROR: "receive failed",
}


@lru_cache(maxsize=4096)
def _origin_and_host(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", (parts.hostname or "").lower()


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: the VAPID ``aud`` and the connection pool key."""
    return _origin_and_host(url)[0]


def may_connect(host: str, address: str, allow_loopback: bool = False) -> bool:
    """Whether the sender may open a connection to ``address`` for a URL on ``host``: a public
    address, or (only with ``allow_loopback``, i.e. ``PUSHCART_INSECURE_ENDPOINTS``) any address
    of a loopback name. The flag opens loopback names, not any name that answers loopback."""
    if allow_loopback and host in LOOPBACK_HOSTS:
        return True
    return public_address(address)


def default_cafile() -> str | None:
    """The CA bundle TLS answers are verified against: ``SSL_CERT_FILE`` when set, else the
    system's OpenSSL bundle, else certifi's (the libcurl inside pycurl's wheel was built
    for another distribution's paths, so one is always named)."""
    named = os.environ.get("SSL_CERT_FILE")
    if named:
        return named
    system = ssl.get_default_verify_paths().openssl_cafile
    if system and os.path.exists(system):
        return system
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with requests
        return None
    return certifi.where()


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


class _Exchange:
    """One pooled libcurl handle and the exchange it carries: which message, the answer so far."""

    __slots__ = ("curl", "job", "index", "host", "origin", "body", "kept", "retry_after", "allow_loopback")

    def __init__(self, options: dict[int, Any], allow_loopback: bool) -> None:
        self.allow_loopback = allow_loopback
        self.job: PreparedBatch | None = None
        self.index = 0
        self.host = self.origin = ""
        self.body: list[bytes] = []
        self.kept = 0
        self.retry_after: str | None = None
        curl = self.curl = pycurl.Curl()
        for option, value in options.items():
            curl.setopt(option, value)
        curl.setopt(pycurl.WRITEFUNCTION, self._write)
        curl.setopt(pycurl.HEADERFUNCTION, self._header)
        curl.setopt(pycurl.OPENSOCKETFUNCTION, self._open_socket)

    def begin(self, job: PreparedBatch, index: int, origin: str, host: str, headers: list[str]) -> None:
        message = job.messages[index]
        self.job, self.index, self.origin, self.host = job, index, origin, host
        self.body, self.kept, self.retry_after = [], 0, None
        curl = self.curl
        curl.setopt(pycurl.URL, message.endpoint)
        curl.setopt(pycurl.POSTFIELDS, job.bodies[index])
        curl.setopt(pycurl.HTTPHEADER, headers)

    def _write(self, data: bytes) -> None:
        if self.kept < MAX_BODY_KEPT:  # the rest is read and dropped
            self.body.append(data)
            self.kept += len(data)

    def _header(self, line: bytes) -> None:
        if line[:5] == b"HTTP/":
            self.retry_after = None  # a new answer (after a 1xx): its headers only
        elif line[:12].lower() == b"retry-after:":
            self.retry_after = line[12:].strip().decode("latin-1")

    def _open_socket(self, _purpose: int, address: Any) -> Any:
        family, socktype, protocol, where = address
        if not may_connect(self.host, where[0], self.allow_loopback):
            log.warning("refused to connect to %s for %s: not a public address", where[0], self.host)
            return pycurl.SOCKET_BAD
        return socket.socket(family, socktype, protocol).detach()  # libcurl owns (and closes) the descriptor


class WebPushSender:
    """Sends batches of ``Message`` concurrently from libcurl's multi interface in a background thread."""

    def __init__(self, vapid: Vapid02, subject: str, *, concurrency: int = 32,
                 connect_timeout: float = 5.0, read_timeout: float = 10.0,
                 cafile: str | None = None, allow_loopback: bool = False,
                 time_source: Callable[[], float] = time.time,
                 observe: Callable[[str, float], None] | None = None) -> None:
        self.vapid_cache = VapidCache(vapid, subject, time_source=time_source)
        self._observe = observe  # (outcome, seconds) of each exchange with a push service: metrics
        self._concurrency = max(1, concurrency)
        self._options = _curl_options(connect_timeout, read_timeout, cafile or default_cafile())
        self._allow_loopback = allow_loopback
        self._time = time_source
        self._held: dict[str, float] = {}  # origin -> wall time before which we do not send
        self._jobs: queue.SimpleQueue[PreparedBatch | None] = queue.SimpleQueue()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="pushcart-sender", daemon=True)
        self._thread.start()

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
        """Send a prepared batch on the sender's thread (at most ``concurrency`` at a time)."""
        if self._closed:
            raise RuntimeError("sender is closed")
        if batch.left == 0:
            batch.future.set_result(batch.results)  # type: ignore[arg-type]  (every result is set)
        else:
            self._jobs.put(batch)
            self._wake()
        return batch.future

    def close(self) -> None:
        """Close the connections and stop the sender's thread (batches still queued fail)."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._wake()
        self._thread.join(timeout=10)
        self._wake_read.close()
        self._wake_write.close()

    def _wake(self) -> None:
        try:
            self._wake_write.send(b"\0")
        except BlockingIOError:  # already woken: the thread drains the bytes when it looks
            pass

    # -- on the sender's thread ----------------------------------------------------------------

    def _run(self) -> None:
        # The sender thread's own state: the multi handle, the free and running exchanges,
        # the messages waiting for an exchange, and the batches not yet answered in full.
        self._multi = multi = pycurl.CurlMulti()
        multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, self._concurrency)
        multi.setopt(pycurl.M_MAXCONNECTS, self._concurrency)
        self._idle = [_Exchange(self._options, self._allow_loopback) for _ in range(self._concurrency)]
        self._running: dict[pycurl.Curl, _Exchange] = {}
        self._waiting: collections.deque[tuple[PreparedBatch, int]] = collections.deque()
        self._open: set[PreparedBatch] = set()
        stopping = False
        try:
            while not stopping:
                stopping = self._take_jobs()
                while self._idle and self._waiting:
                    job, index = self._waiting.popleft()
                    if not job.future.done():
                        self._begin(job, index)
                if self._running:
                    while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                        pass
                    self._harvest()
                if not stopping and not (self._idle and self._waiting):
                    self._wait()
        finally:
            for exchange in list(self._running.values()):
                multi.remove_handle(exchange.curl)
            for job in self._open:
                job.fail(RuntimeError("sender closed before the batch was sent"))
            for exchange in [*self._idle, *self._running.values()]:
                exchange.curl.close()
            multi.close()

    def _take_jobs(self) -> bool:
        """Move queued batches to ``_waiting``; True when ``close`` asked the thread to stop."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return False
            if job is None:
                return True
            self._open.add(job)
            self._waiting.extend((job, i) for i, result in enumerate(job.results) if result is None)

    def _begin(self, job: PreparedBatch, index: int) -> None:
        message = job.messages[index]
        origin, host = _origin_and_host(message.endpoint)
        held_until = self._held.get(origin)
        if held_until is not None:
            wait = held_until - self._time()
            if wait > 0:
                self._complete(job, index, SendResult(HELD, None, "origin rate limited", wait))
                return
            del self._held[origin]
        try:
            headers = [
                f"Authorization: {self.vapid_cache.header(origin, message.vapid)}",
                f"TTL: {max(0, int(message.ttl))}",
                f"Urgency: {message.urgency}",
                "Content-Encoding: aes128gcm",
                "Content-Type: application/octet-stream",
                "Expect:",  # no 100-continue round trip
            ]
            if message.topic:
                headers.append(f"Topic: {message.topic}")
            exchange = self._idle.pop()
            exchange.begin(job, index, origin, host, headers)
            self._multi.add_handle(exchange.curl)
        except Exception as exc:  # a bug, not a push service's answer: the batch's caller sees it
            self._open.discard(job)
            job.fail(exc)
            return
        self._running[exchange.curl] = exchange

    def _harvest(self) -> None:
        while True:
            queued, succeeded, failed = self._multi.info_read()
            for curl in succeeded:
                self._finish(curl, None)
            for curl, code, _message in failed:
                self._finish(curl, code)
            if not queued:
                return

    def _finish(self, curl: pycurl.Curl, error: int | None) -> None:
        exchange = self._running.pop(curl)
        self._multi.remove_handle(curl)
        self._idle.append(exchange)
        job, index = exchange.job, exchange.index
        exchange.job = None
        assert job is not None
        seconds = curl.getinfo(pycurl.TOTAL_TIME)
        if error is not None:
            result = self._failure(error)
        else:
            result = classify(curl.getinfo(pycurl.RESPONSE_CODE), exchange.retry_after, b"".join(exchange.body),
                              self._time())
            if result.http_status == 429:
                self._held[exchange.origin] = self._time() + (
                    result.retry_after if result.retry_after is not None else 60.0)
            if result.http_status in (400, 401, 403):
                log.error("push %s: push service refused our request (%s): VAPID key or encryption",
                          job.messages[index].push_id, result.http_status)
        if self._observe is not None:
            self._observe(result.outcome, seconds)
        self._complete(job, index, result)

    @staticmethod
    def _failure(code: int) -> SendResult:
        if code == pycurl.E_OPERATION_TIMEDOUT:
            return SendResult(RETRY, None, "timeout")
        return SendResult(RETRY, None, f"connection error: {_CURL_ERRORS.get(code, f'curl error {code}')}")

    def _complete(self, job: PreparedBatch, index: int, result: SendResult) -> None:
        """Set one message's result; the last one of its batch answers the batch's future."""
        job.results[index] = result
        job.left -= 1
        if job.left:
            return
        self._open.discard(job)
        if not job.future.done():
            job.future.set_result(job.results)  # type: ignore[arg-type]

    def _wait(self) -> None:
        """Sleep until a socket of a running exchange is ready, libcurl's next timer is due, or
        ``start``/``close`` wakes the thread."""
        reads, writes, errors = self._multi.fdset() if self._running else ([], [], [])
        timeout: float | None = None
        if self._running:
            due = self._multi.timeout()  # ms; -1: no timer set
            timeout = 1.0 if due < 0 else due / 1000
        ready, _, _ = select.select([*reads, self._wake_read], writes, errors, timeout)
        if self._wake_read in ready:
            try:
                while self._wake_read.recv(4096):
                    pass
            except BlockingIOError:
                pass


def _curl_options(connect_timeout: float, read_timeout: float, cafile: str | None) -> dict[int, Any]:
    """What every exchange is set up with.

    The connect timeout bounds the connection (TCP and TLS); the read timeout is an idle
    timeout on the answer (less than a byte a second for that long, in whole seconds, at
    least one) and, with the connect timeout, bounds the whole exchange.
    """
    options: dict[int, Any] = {
        pycurl.NOSIGNAL: 1,
        pycurl.PROXY: "",  # never a proxy from the environment
        pycurl.FOLLOWLOCATION: 0,
        pycurl.PROTOCOLS: pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS,
        pycurl.CONNECTTIMEOUT_MS: max(1, int(connect_timeout * 1000)),
        pycurl.TIMEOUT_MS: max(1, int((connect_timeout + read_timeout) * 1000)),
        pycurl.LOW_SPEED_LIMIT: 1,
        pycurl.LOW_SPEED_TIME: max(1, math.ceil(read_timeout)),
        pycurl.USERAGENT: USER_AGENT,
        pycurl.SSL_VERIFYPEER: 1,
        pycurl.SSL_VERIFYHOST: 2,
        pycurl.DNS_CACHE_TIMEOUT: 300,
    }
    if cafile:
        options[pycurl.CAINFO] = cafile
    return options


def sender_options(config: Any) -> dict[str, Any]:
    """The ``WebPushSender`` keyword options from the app config."""
    return {
        "concurrency": int(config["PUSH_CONCURRENCY"]),
        "connect_timeout": float(config["PUSH_CONNECT_TIMEOUT"]),
        "read_timeout": float(config["PUSH_READ_TIMEOUT"]),
        "allow_loopback": bool(config.get("PUSHCART_INSECURE_ENDPOINTS")),
    }
