"""Sending pushes: what the dispatcher hands over (``Message``) and gets back (``SendResult``),
behind one protocol (``Sender``).

- ``outcomes``: what a push service's answer means;
- ``vapid``: the VAPID key pair, the ``sub`` contact and the signed headers (py-vapid);
- ``crypto``: the message encryption (http_ece, as pywebpush calls it);
- ``transport``: ``WebPushSender``, pooled HTTP on a thread of its own (libcurl, through pycurl).
"""
from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from py_vapid import Vapid02

from server.delivery.push.outcomes import SendResult


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
    vapid: Vapid02 | None = None  # the key the subscription was made with; None: the instance key


class Sender(Protocol):
    """What the dispatcher needs from a sender: the real ``transport.WebPushSender``, or the
    tests' one fake (``tests/fakesender.py``).

    ``prepare`` does the CPU work of a batch in the caller's thread (the encryption), so the
    dispatcher prepares batch N+1 while batch N is on the network; ``start`` puts a prepared
    batch on the network and returns a future of one ``SendResult`` per message, in order.
    """

    def prepare(self, messages: Sequence[Message]) -> Any: ...

    def start(self, prepared: Any) -> concurrent.futures.Future[list[SendResult]]: ...

    def close(self) -> None: ...
