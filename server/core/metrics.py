"""In-process metrics (prometheus_client), one registry per app, exposed at ``GET /metrics``.

Any area may count or time something::

    from server import metrics
    metrics.inc("pushes_planned", {"kind": "welcome"}, amount=3)   # a counter
    metrics.observe("send_latency", 0.042, {"outcome": "sent"})    # a histogram, in seconds

A name is exposed as ``pushcart_<name>_total`` (counters) or ``pushcart_<name>_seconds``
(histograms). The names below are declared up front, so they show at zero before the first
event; other names are created on first use with the label names of that first call. Metrics
never break a request: a call outside an app context, or with label names that do not match
the metric's, is logged and dropped.

Under gunicorn with several workers, ``gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR``, so
every worker's counters and histograms are kept in files there and summed at each scrape
(prometheus_client's multiprocess mode). Counts of pushes by kind and outcome and the outbox
backlog are read from the database at scrape time (``server.ops.health_routes``): they are true across every process, while these
in-process counters are per process (scrape every process, or sum them).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, current_app, g, has_app_context, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

log = logging.getLogger(__name__)

EXTENSION = "pushcart.metrics"
PREFIX = "pushcart_"

# name -> (help, label names)
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "events_accepted": ("Events accepted by the collect API (stored, or journaled to be stored)", ()),
    "events_rejected": ("Event batches the collect API refused, by error code", ("code",)),
    "requests_rejected": ("Public API requests refused, by status and error code", ("status", "code")),
    "rate_limited": ("Requests refused by a rate limit, by limit", ("scope",)),
    "journal_rejected": ("Journaled event batches the database refused (kept in rejected-<journal>.jsonl)", ()),
}
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "send_latency": ("Time to hand one push to the push service, by outcome", ("outcome",)),
    "request_latency": ("Time to answer a collect or webhook request, by route group", ("group",)),
}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters and histograms of one app, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters: dict[str, Counter] = {}
        self._histograms: dict[str, Histogram] = {}
        self._lock = threading.Lock()
        self._children: dict[tuple[str, str, tuple[tuple[str, str], ...]], Any] = {}
        for name, (doc, labels) in COUNTERS.items():
            self._counters[name] = Counter(PREFIX + name, doc, labels, registry=self.registry)
        for name, (doc, labels) in HISTOGRAMS.items():
            self._histograms[name] = Histogram(PREFIX + name + "_seconds", doc, labels,
                                               buckets=LATENCY_BUCKETS, registry=self.registry)

    def counter(self, name: str, labels: Mapping[str, str]) -> Counter:
        """The counter called ``name``, created with ``labels``' names on first use."""
        with self._lock:
            if name not in self._counters:
                self._counters[name] = Counter(PREFIX + name, name.replace("_", " "), sorted(labels),
                                               registry=self.registry)
            return self._counters[name]

    def child(self, family: str, name: str, labels: Mapping[str, str]) -> Any:
        """The ``counter`` or ``histogram`` called ``name`` with these labels (made on first use),
        kept for the next call: ``labels()`` costs a lock and a lookup each time, and the public
        API counts on every request. Raises ValueError when the label names do not match."""
        key = (family, name, tuple(sorted(labels.items())))
        found = self._children.get(key)
        if found is None:
            metric = getattr(self, family)(name, labels)
            found = self._children.setdefault(key, metric.labels(**labels) if labels else metric)
        return found

    def exposition(self) -> bytes:
        """These metrics in the Prometheus text format: this process's, or, with several worker
        processes (``PROMETHEUS_MULTIPROC_DIR`` set, as ``gunicorn.conf.py`` does), the sum over
        all of them, so a scrape answered by any worker tells the whole service's counts."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)

    def histogram(self, name: str, labels: Mapping[str, str]) -> Histogram:
        """The histogram called ``name`` (seconds), created with ``labels``' names on first use."""
        with self._lock:
            if name not in self._histograms:
                self._histograms[name] = Histogram(PREFIX + name + "_seconds", name.replace("_", " "),
                                                   sorted(labels), buckets=LATENCY_BUCKETS,
                                                   registry=self.registry)
            return self._histograms[name]


def init_app(app: Flask) -> Metrics:
    """Give the app its own metrics registry and count the public API's answers."""
    registry = Metrics()
    app.extensions[EXTENSION] = registry

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count_answer(response: Response) -> Response:
        _record_public_answer(registry, response)
        return response

    return registry


def _route_group(path: str, method: str) -> str | None:
    """``events``, ``subscriptions``, ``config``, ``webhooks`` or None for other paths."""
    if path.startswith("/v1/webhooks/"):
        return "webhooks"
    if path.startswith("/v1/shops/"):
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if last in ("events", "subscriptions", "config"):
            return last
    return None


def _record_public_answer(registry: Metrics, response: Response) -> None:
    """Events accepted and rejected, public requests refused, and answer latency."""
    group = _route_group(request.path, request.method)
    if group is None or request.method == "OPTIONS":
        return
    started = g.get("metrics_started")
    if started is not None:
        registry.child("histogram", "request_latency", {"group": group}).observe(time.perf_counter() - started)
    code = ""
    if response.status_code >= 400 and response.is_json:
        body = response.get_json(silent=True) or {}
        error = body.get("error") if isinstance(body, dict) else None
        code = str(error.get("code", "")) if isinstance(error, dict) else ""
    if response.status_code >= 400:
        labels = {"status": str(response.status_code), "code": code or "none"}
        registry.child("counter", "requests_rejected", labels).inc()
    if group != "events" or request.method != "POST":
        return
    if response.status_code >= 400:
        registry.child("counter", "events_rejected", {"code": code or "none"}).inc()
    else:
        accepted = g.get("events_accepted", 0)  # set by the events view: no need to parse the answer
        if accepted > 0:
            registry.child("counter", "events_accepted", {}).inc(accepted)


def get_metrics(app: Flask | None = None) -> Metrics | None:
    """The metrics of ``app`` (default: the current app), or None outside an app context."""
    if app is None:
        if not has_app_context():
            return None
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    return app.extensions.get(EXTENSION)


def inc(name: str, labels: Mapping[str, str] | None = None, amount: float = 1,
        app: Flask | None = None) -> None:
    """Add ``amount`` to the counter ``name`` with ``labels``."""
    _record("counter", name, labels, app, lambda metric: metric.inc(amount))


def observe(name: str, seconds: float, labels: Mapping[str, str] | None = None,
            app: Flask | None = None) -> None:
    """Record one duration (seconds) in the histogram ``name`` with ``labels``."""
    _record("histogram", name, labels, app, lambda metric: metric.observe(seconds))


def _record(family: str, name: str, labels: Mapping[str, str] | None, app: Flask | None,
            update: Callable[[Any], None]) -> None:
    """Find (or make) the metric and apply ``update``; a metric never breaks the caller."""
    found = get_metrics(app)
    if found is None:
        log.debug("metric %s dropped: no app", name)
        return
    labels = {k: str(v) for k, v in (labels or {}).items()}
    try:
        update(found.child(family, name, labels))
    except ValueError as exc:
        log.warning("metric %s dropped: %s", name, exc)
