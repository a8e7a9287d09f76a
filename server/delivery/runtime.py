"""Wiring the delivery engine to an app: one sender and one dispatcher per process.

Both live on ``app.extensions`` (created on first use, never at import). A test may put a fake
sender at ``app.extensions[SENDER]`` before the dispatcher is first asked for.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask

from server.core.db import get_db
from server.delivery.push.vapid import get_vapid
from server.delivery.dispatcher import Clock, Dispatcher
from server.delivery.push.transport import WebPushSender, sender_options

log = logging.getLogger(__name__)

SENDER = "pushcart.sender"
DISPATCHER = "pushcart.dispatcher"
_lock = threading.Lock()


def get_sender(app: Flask) -> Any:
    """The app's sender (a ``WebPushSender`` unless a test put another one in place)."""
    with _lock:
        sender = app.extensions.get(SENDER)
        if sender is None:
            sender = WebPushSender(get_vapid(app), app.config.get("VAPID_SUBJECT") or "",
                                   observe=_send_latency(app), **sender_options(app.config))
            app.extensions[SENDER] = sender
        return sender


def get_dispatcher(app: Flask) -> Dispatcher:
    """The app's dispatcher on the app's clock."""
    from server.core.clock import get_clock

    sender = get_sender(app)
    with _lock:
        dispatcher = app.extensions.get(DISPATCHER)
        if dispatcher is None:
            dispatcher = Dispatcher(get_db(app), sender, app.config, get_clock(app))
            app.extensions[DISPATCHER] = dispatcher
        return dispatcher


def make_dispatcher(app: Flask, clock: Clock) -> Dispatcher:
    """A dispatcher on another clock (``dispatch --once --at``), sharing the app's sender."""
    return Dispatcher(get_db(app), get_sender(app), app.config, clock)


def close_delivery(app: Flask) -> None:
    """Close the sender's connections and thread, if one was made."""
    with _lock:
        app.extensions.pop(DISPATCHER, None)
        sender = app.extensions.pop(SENDER, None)
    close = getattr(sender, "close", None)
    if close is not None:
        close()


def _send_latency(app: Flask) -> Any:
    """Record each push service exchange in ``pushcart_send_latency_seconds{outcome}``.

    Called once per push on the sender's thread: the histogram child of each outcome is
    looked up once and kept, so a push costs one ``observe`` and no label handling."""
    from server.core import metrics

    children: dict[str, Any] = {}

    def observe(outcome: str, seconds: float) -> None:
        child = children.get(outcome)
        if child is None:
            found = metrics.get_metrics(app)
            if found is None:
                return
            try:
                child = children[outcome] = found.child("histogram", "send_latency", {"outcome": outcome})
            except ValueError as exc:
                log.warning("metric send_latency dropped: %s", exc)
                return
        child.observe(seconds)

    return observe
