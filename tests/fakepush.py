"""A small programmable push service over HTTP, in a thread of the test process.

It covers what ``web-push-testing`` cannot: answering 413, 429 with ``Retry-After``, 5xx,
stalling a socket, redirecting. Every request it gets is checked the way a real push service
would check it, and the findings are kept in ``violations``: a ``TTL`` header, ``Content-Encoding:
aes128gcm``, an encrypted body under 3 KB that decrypts with the subscription's keys, and a
VAPID ``Authorization: vapid t=<JWT>,k=<key>`` whose signature verifies, whose ``aud`` is this
service's origin, whose ``exp`` is in the future and at most 24 h away, and which has a ``sub``.

Every subscription handed out shares one receiver key pair, so the service can decrypt every
body and count pushes by their ``push_id``.
"""
from __future__ import annotations

import base64
import collections
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid02

_AUTH = re.compile(r"^vapid t=([A-Za-z0-9_\-.]+),\s*k=([A-Za-z0-9_\-]+)$")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5. Workers open up to 32 connections each at
    # once; with a queue of 5 the kernel drops handshakes, and the client's retransmissions
    # (1 s, 3 s, 7 s, ...) can outlast its 10 s read timeout while this busy test process
    # accepts one connection at a time. A real push service's accept queue is far longer.
    request_queue_size = 1024


@dataclass
class Reply:
    """How to answer one request: a status, headers, an optional delay, or a stall (no answer)."""

    status: int = 201
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stall: bool = False
    body: bytes = b""


@dataclass
class Received:
    """One request as the service saw it."""

    path: str
    headers: dict[str, str]
    body_length: int
    payload: dict[str, Any] | None
    claims: dict[str, Any] | None
    violations: list[str]
    status: int = 0


class FakePushService:
    """The service; use as a context manager or call ``start``/``stop``."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._auth = os.urandom(16)
        self.p256dh = _b64(self._key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
        self.auth = _b64(self._auth)
        self.requests: list[Received] = []
        self.violations: list[str] = []
        self.default = Reply()
        self._scripts: dict[str, collections.deque[Reply]] = collections.defaultdict(collections.deque)
        self._release = threading.Event()
        self._lock = threading.Lock()
        self.check_vapid = True
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real push services do

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                service._handle(self)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fakepush",
                                        daemon=True)

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> FakePushService:
        """Serve in a background thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release stalled requests and stop serving."""
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakePushService:
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()

    # -- programming it ------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``: what the VAPID ``aud`` must be."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def endpoint(self, name: str) -> str:
        """A subscription endpoint on this service."""
        return f"{self.origin}/push/{name}"

    def keys(self) -> dict[str, str]:
        """The ``p256dh``/``auth`` pair every subscription on this service uses."""
        return {"p256dh": self.p256dh, "auth": self.auth}

    def script(self, name: str, *replies: Reply) -> None:
        """Answer the next requests to endpoint ``name`` with ``replies``, in order (then the default)."""
        with self._lock:
            self._scripts[f"/push/{name}"].extend(replies)

    def release_stalled(self) -> None:
        """Let stalled requests finish (they then close without an answer)."""
        self._release.set()

    # -- what arrived --------------------------------------------------------------------

    def payloads(self) -> list[dict[str, Any]]:
        """The decrypted payloads of every request, in arrival order."""
        return [r.payload for r in list(self.requests) if r.payload is not None]

    def push_id_counts(self) -> collections.Counter[int]:
        """How many times each ``push_id`` arrived (answered 2xx)."""
        return collections.Counter(r.payload["push_id"] for r in list(self.requests)
                                   if r.payload is not None and 200 <= r.status < 300)

    # -- the handler ---------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        violations: list[str] = []
        payload, claims = self._check(headers, body, violations)
        with self._lock:
            script = self._scripts.get(handler.path)
            reply = script.popleft() if script else self.default
        received = Received(handler.path, headers, len(body), payload, claims, violations)
        self.requests.append(received)
        self.violations.extend(violations)
        if reply.stall:
            self._release.wait(30)
            handler.close_connection = True
            return
        if reply.delay:
            time.sleep(reply.delay)
        status = 400 if violations else reply.status
        received.status = status
        handler.send_response(status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        if reply.body:
            handler.wfile.write(reply.body)

    def _check(self, headers: dict[str, str], body: bytes, violations: list[str]
               ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        ttl = headers.get("ttl")
        if ttl is None or not ttl.isdigit():
            violations.append(f"TTL header missing or not a number: {ttl!r}")
        if headers.get("content-encoding") != "aes128gcm":
            violations.append(f"Content-Encoding is {headers.get('content-encoding')!r}, not aes128gcm")
        if len(body) > 3072:
            violations.append(f"encrypted body of {len(body)} bytes is over 3 KB")
        claims = self._check_vapid(headers.get("authorization", ""), violations) if self.check_vapid else None
        payload = None
        try:
            plain = http_ece.decrypt(body, private_key=self._key, auth_secret=self._auth, version="aes128gcm")
            payload = json.loads(plain)
        except Exception as exc:  # what a push client would do with a body it cannot read
            violations.append(f"body does not decrypt to JSON: {type(exc).__name__}")
        return payload, claims

    def _check_vapid(self, authorization: str, violations: list[str]) -> dict[str, Any] | None:
        match = _AUTH.match(authorization)
        if not match:
            violations.append("Authorization is not 'vapid t=...,k=...'")
            return None
        token = match.group(1)
        try:
            valid = Vapid02.verify(authorization)
        except Exception:
            valid = False
        if not valid:
            violations.append("VAPID signature does not verify")
        try:
            claims = json.loads(_unb64(token.split(".")[1]))
        except Exception:
            violations.append("VAPID token claims are not JSON")
            return None
        now = time.time()
        if claims.get("aud") != self.origin:
            violations.append(f"VAPID aud {claims.get('aud')!r} is not {self.origin!r}")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now or exp > now + 24 * 3600:
            violations.append(f"VAPID exp {exp!r} is not within the next 24 h")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            violations.append("VAPID sub missing")
        return claims
