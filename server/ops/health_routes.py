"""Operations: ``GET /healthz`` for load balancers and people, ``GET /metrics`` for Prometheus.

``/healthz`` answers 200 while the database answers (``status`` is ``ok``, or ``degraded``
when the scheduler of this process has not ticked lately or due pushes wait too long) and 503
when it does not. The scheduler reports its last tick in
``app.extensions["pushcart.scheduler_last_tick"]`` (an aware datetime or a Unix time); a web
process without a scheduler (``RUN_SCHEDULER=0``) reports ``null`` there.

``push_storms`` lists the push services answering 404/410 to most pushes
(``server.delivery.storm``): each one's host, since when, and the subscriptions held as suspect
instead of expired. Any storm makes the service ``degraded``.

When events are journaled (``server.collect.journal``), ``journal`` tells this process's batches not
yet stored, the oldest one's age, the batches refused, and the drain's last error.

``/metrics`` is open unless ``METRICS_TOKEN`` is set (then ``Authorization: Bearer <token>``).
It holds no personal data: counts and durations only.
"""
from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from server.core.clock import get_clock
from server.core.db import get_session
from server.core.errors import Unauthorized
from server.collect.journal import event_journal
from server.core.metrics import get_metrics
from server.ops.health import database_reachable, outbox_backlog, push_counts, subscription_counts
from server.delivery.push.vapid import subject_problem
from server.delivery.runtime import DISPATCHER
from server.delivery.storm import StormSettings, host_states

bp = Blueprint("ops", __name__)

SCHEDULER_LAST_TICK = "pushcart.scheduler_last_tick"
# A scheduler that has not ticked for this long is reported as not ticking.
SCHEDULER_STALE_SECONDS = 120
# Due pushes waiting longer than this make the service "degraded".
BACKLOG_STALE_SECONDS = 600
# Journaled events waiting longer than this (their drain is failing) make it "degraded" too.
JOURNAL_STALE_SECONDS = 60


def scheduler_last_tick() -> datetime | None:
    """The last tick of this process's scheduler, or None when it has none."""
    value = current_app.extensions.get(SCHEDULER_LAST_TICK)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return None


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    """Database reachable, scheduler ticking, outbox backlog and the oldest due push's age."""
    now = get_clock().now()
    session = get_session()
    reachable = database_reachable(session)
    tick = scheduler_last_tick()
    tick_age = (now - tick).total_seconds() if tick is not None else None
    ticking = None if tick_age is None else tick_age <= SCHEDULER_STALE_SECONDS
    body: dict[str, Any] = {
        "status": "ok",
        "time": now.isoformat(),
        "database": "ok" if reachable else "unreachable",
        "scheduler": {
            "last_tick": tick.isoformat() if tick else None,
            "last_tick_age_seconds": round(tick_age, 3) if tick_age is not None else None,
            "ticking": ticking,
        },
        "outbox": None,
        "push_storms": None,
        "journal": _journal_status(),
        # Pushes cannot be sent with this set-up (a sending process refuses to start): say why.
        "delivery": {"vapid_subject": current_app.config.get("VAPID_SUBJECT"),
                     "problem": subject_problem(current_app.config.get("VAPID_SUBJECT"))},
    }
    if not reachable:
        body["status"] = "down"
        return body, 503
    backlog = outbox_backlog(session, now)
    body["outbox"] = {
        "due": backlog.due,
        "scheduled": backlog.scheduled,
        "sending": backlog.sending,
        "oldest_due_age_seconds": (round(backlog.oldest_due_age_seconds, 3)
                                   if backlog.oldest_due_age_seconds is not None else None),
    }
    body["push_storms"] = [
        {"host": state.host, "since": state.storm_since.isoformat(), "suspect_subscriptions": state.suspects}
        for state in host_states(session, now, StormSettings.from_config(current_app.config))
        if state.storm_since is not None]
    journal = body["journal"] or {}
    if (body["push_storms"] or ticking is False or body["delivery"]["problem"] or (backlog.oldest_due_age_seconds or 0) > BACKLOG_STALE_SECONDS
            or journal.get("last_error") or (journal.get("oldest_age_seconds") or 0) > JOURNAL_STALE_SECONDS):
        body["status"] = "degraded"
    return body, 200


def _journal_status() -> dict[str, Any]:
    """This process's events journal (``server.collect.journal``)."""
    return event_journal(current_app).status()


class _DatabaseCollector(Collector):
    """Gauges read from the database for one scrape."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self.families


def _database_families(now: datetime) -> list[GaugeMetricFamily]:
    session = get_session()
    up = GaugeMetricFamily("pushcart_database_up", "1 when the database answers")
    reachable = database_reachable(session)
    up.add_metric([], 1.0 if reachable else 0.0)
    families = [up]
    families.append(GaugeMetricFamily("pushcart_journal_pending",
                                      "Event batches in this process's journal, not yet in the database",
                                      value=_journal_status()["pending"]))
    dispatcher = current_app.extensions.get(DISPATCHER)
    families.append(GaugeMetricFamily("pushcart_dispatch_outcomes_unwritten",
                                      "Outcomes of pushes this process sent, held until the database answers",
                                      value=dispatcher.unwritten_outcomes if dispatcher is not None else 0))
    tick = scheduler_last_tick()
    if tick is not None:
        families.append(GaugeMetricFamily("pushcart_scheduler_last_tick_timestamp_seconds",
                                          "Unix time of this process's last scheduler tick",
                                          value=tick.timestamp()))
    if not reachable:
        return families
    pushes = GaugeMetricFamily("pushcart_pushes", "Push records by kind and status (outcome)",
                               labels=["kind", "status"])
    for kind, status, count in push_counts(session):
        pushes.add_metric([kind, status], count)
    subscriptions = GaugeMetricFamily("pushcart_subscriptions", "Subscriptions by status",
                                      labels=["status"])
    for status, count in subscription_counts(session):
        subscriptions.add_metric([status], count)
    backlog = outbox_backlog(session, now)
    outbox = GaugeMetricFamily("pushcart_outbox", "Open outbox rows by state", labels=["state"])
    outbox.add_metric(["due"], backlog.due)
    outbox.add_metric(["scheduled"], backlog.scheduled)
    outbox.add_metric(["sending"], backlog.sending)
    oldest = GaugeMetricFamily("pushcart_outbox_oldest_due_age_seconds",
                               "How long the oldest due push has waited (0 when none)",
                               value=backlog.oldest_due_age_seconds or 0.0)
    storms = GaugeMetricFamily("pushcart_push_storm",
                               "1 while a push service answers 404/410 to most pushes (a storm), by host",
                               labels=["host"])
    suspects = GaugeMetricFamily("pushcart_suspect_subscriptions",
                                 "Subscriptions held as suspect (a 404/410 during a storm), by push service host",
                                 labels=["host"])
    for state in host_states(session, now, StormSettings.from_config(current_app.config)):
        storms.add_metric([state.host], 1.0 if state.storm_since is not None else 0.0)
        suspects.add_metric([state.host], state.suspects)
    return families + [pushes, subscriptions, outbox, oldest, storms, suspects]


@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus text exposition: in-process counters, then gauges read from the database."""
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthorized("a metrics token is needed: Authorization: Bearer <token>",
                               headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_DatabaseCollector(_database_families(get_clock().now())))
    parts = [generate_latest(scrape)]
    registry = get_metrics()
    if registry is not None:
        parts.insert(0, registry.exposition())
    return Response(b"".join(parts), mimetype=None, content_type=CONTENT_TYPE_LATEST)
