"""The injected clock: every rule takes ``now`` from here, never from ``datetime.now()``."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Flask, current_app

CLOCK = "pushcart.clock"  # the app's clock on app.extensions


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime (the only wall-clock read)."""
    return datetime.now(timezone.utc)


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return utcnow()


class FrozenClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the frozen time."""
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        """Move the clock to ``when`` (must be aware)."""
        if when.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        with self._lock:
            self._now = when.astimezone(timezone.utc)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move the clock forward by ``delta`` (or ``timedelta(**kwargs)``) and return the new time."""
        with self._lock:
            self._now = self._now + (delta or timedelta(**kwargs))
            return self._now


def get_clock(app: Flask | None = None) -> Any:
    """The app's clock (``SystemClock`` or a test's ``FrozenClock``)."""
    return (app or current_app).extensions[CLOCK]
