"""The mass 404/410 guard: a push service's bad day must not cost the shop its subscribers.

On 2024-06-26 FCM answered 404 for huge numbers of valid subscriptions for hours (w3c/push-api
issue 371); services that expired a subscription on every 404 lost their subscriber bases.
So the dispatcher keeps, per push service host (the endpoint's origin), a sliding window of
its answers and how many of them said gone (404/410), and a baseline: the usual share of gone
(a moving average of calm windows). When the window holds at least ``min_answers`` answers and
its share of gone rises above ``max(min_share, baseline_factor x baseline)``, the host is in a
*storm*:

- a 404/410 from it no longer expires the subscription: the subscription is marked suspect
  (``suspect_since``, ``suspect_host``; it stays ``active``) and the push goes back to the
  outbox, retried every ``retry_seconds`` (the attempt is given back; its TTL still ends it);
- a 2xx to a suspect subscription clears that one (it is alive);
- when the window holds ``min_answers`` answers again and the share is back under the
  threshold, the storm ends: every suspect subscription of the host is restored and its held
  pushes are due at once.

Outside a storm a 404/410 expires the subscription at once: a few per cent is normal churn.
One case is held too: while a window is too small to judge (under ``min_answers`` answers)
but already holds several gone answers above the threshold, as at the start of a storm on a
host whose pushes share batches with others' (``UNSURE``). Such a subscription is held once:
its next 404/410 outside a storm expires it.

The window is two buckets of ``window_seconds`` (the current one and the one before, weighted
by how much of it still lies inside the window), kept in ``push_hosts``, one row per host,
shared by every worker process. Each batch is judged on the stored row (read, not locked)
plus the answers this process has not written yet plus the batch's own (``HostWindows``).
The row is written (locked: ``FOR UPDATE`` on PostgreSQL, in the transaction that records the
batch) when a batch is not calm (a storm, or too early to judge, or a storm starting or
ending), and otherwise at most once per ``WRITE_SECONDS`` and at the end of each pass: the
row of a busy push service is every worker's, and locking it for every batch made two
worker processes send at the speed of one.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.config import default
from server.core.models import Push, PushHost, PushStatus, Subscription, SubscriptionStatus
from server.outbox.claim import expire_subscriptions

log = logging.getLogger(__name__)

STARTED, ENDED = "started", "ended"
# What ``observe`` says of a host after a batch: in a storm, or too early to judge (fewer than
# ``min_answers`` answers, yet already several gone and above the threshold).
STORM, UNSURE = "storm", "unsure"
# A host answering gone to half of everything is in a storm whatever its history: the baseline
# can raise the threshold up to here, no further.
MAX_THRESHOLD = 0.5
# How much one calm bucket moves the baseline (an exponential moving average).
BASELINE_WEIGHT = 0.2
# How long a process may keep calm answers before it adds them to the shared rows.
WRITE_SECONDS = 1.0


@dataclass(frozen=True)
class StormSettings:
    """The guard's thresholds, from the app config (``PUSH_STORM_*``)."""

    window_seconds: float = default("PUSH_STORM_WINDOW_SECONDS")
    min_answers: int = default("PUSH_STORM_MIN_ANSWERS")
    min_share: float = default("PUSH_STORM_MIN_SHARE")
    baseline_factor: float = default("PUSH_STORM_BASELINE_FACTOR")
    retry_seconds: float = default("PUSH_STORM_RETRY_SECONDS")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StormSettings:
        """Read the ``PUSH_STORM_*`` keys of a loaded app config (declared in ``core.config``)."""
        return cls(
            window_seconds=float(config["PUSH_STORM_WINDOW_SECONDS"]),
            min_answers=int(config["PUSH_STORM_MIN_ANSWERS"]),
            min_share=float(config["PUSH_STORM_MIN_SHARE"]),
            baseline_factor=float(config["PUSH_STORM_BASELINE_FACTOR"]),
            retry_seconds=float(config["PUSH_STORM_RETRY_SECONDS"]),
        )


def origin(endpoint: str) -> str:
    """The push service host of an endpoint: its origin (``https://fcm.googleapis.com``).

    Endpoints were checked when stored (``server.delivery.endpoints``); this only cuts the path.
    """
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        return ""
    return f"{scheme.lower()}://{rest.split('/', 1)[0].split('?', 1)[0].lower()}"[:255]


# -- the arithmetic (on a ``PushHost`` row, no database) -----------------------------------------

def threshold(baseline: float | None, settings: StormSettings) -> float:
    """The share of gone answers above which a host is in a storm."""
    return min(MAX_THRESHOLD, max(settings.min_share, settings.baseline_factor * (baseline or 0.0)))


def roll(row: PushHost, now: datetime, settings: StormSettings) -> None:
    """Move the window to ``now``: a bucket that ended becomes the previous one (or both are
    dropped after a whole idle window); a calm, full bucket that ends moves the baseline."""
    width = timedelta(seconds=settings.window_seconds)
    elapsed = now - row.bucket_start
    if elapsed < width:
        return
    if row.storm_since is None and row.answers >= settings.min_answers:
        share = row.gone / row.answers
        row.baseline = share if row.baseline is None else row.baseline + BASELINE_WEIGHT * (share - row.baseline)
    if elapsed < 2 * width:
        row.previous_answers, row.previous_gone = row.answers, row.gone
    else:
        row.previous_answers, row.previous_gone = 0, 0
    row.answers, row.gone = 0, 0
    row.bucket_start += width * int(elapsed / width)


def window(row: PushHost, now: datetime, settings: StormSettings) -> tuple[float, float]:
    """``(answers, gone)`` in the window ending at ``now`` (after ``roll``): the current bucket,
    plus the previous one weighted by the part of it still inside the window."""
    elapsed = (now - row.bucket_start).total_seconds()
    weight = min(1.0, max(0.0, 1.0 - elapsed / settings.window_seconds))
    return row.answers + row.previous_answers * weight, row.gone + row.previous_gone * weight


def record(row: PushHost, answers: int, gone: int, now: datetime, settings: StormSettings) -> str | None:
    """Add one batch's answers to a host's window and judge it: ``STARTED`` when a storm
    starts, ``ENDED`` when one ends, None when nothing changed."""
    roll(row, now, settings)
    row.answers += answers
    row.gone += gone
    row.updated_at = now
    total, bad = window(row, now, settings)
    if total < settings.min_answers:
        return None  # too few answers to judge either way: the state stays
    stormy = bad / total > threshold(row.baseline, settings)
    if stormy and row.storm_since is None:
        row.storm_since = now
        return STARTED
    if not stormy and row.storm_since is not None:
        row.storm_since = None
        row.storm_until = now
        return ENDED
    return None


# -- the database --------------------------------------------------------------------------------

def verdict(row: PushHost, now: datetime, settings: StormSettings) -> str | None:
    """``STORM``, ``UNSURE`` (too few answers to judge, but already more than one gone and above
    the threshold) or None (calm: a 404/410 expires at once)."""
    if row.storm_since is not None:
        return STORM
    total, bad = window(row, now, settings)
    if total < settings.min_answers and bad > 1 and bad / total > threshold(row.baseline, settings):
        return UNSURE
    return None


def observe(session: orm.Session, tallies: Mapping[str, tuple[int, int]], now: datetime,
            settings: StormSettings) -> dict[str, str]:
    """Add ``{host: (answers, gone)}`` to the hosts' windows and return the ``verdict`` of each
    host that is not calm after it. A storm that ends restores its suspect
    subscriptions. The host rows stay locked until the caller commits (every worker updates
    them; locked in name order)."""
    hosts = sorted(tallies)
    if not hosts:
        return {}
    rows = _locked(session, hosts)
    missing = [h for h in hosts if h not in rows]
    if missing:
        _insert_missing(session, missing, now)
        rows = _locked(session, hosts)
    verdicts = {}
    for host in hosts:
        row = rows[host]
        change = record(row, *tallies[host], now, settings)
        if change == STARTED:
            total, bad = window(row, now, settings)
            log.warning("push service %s answers gone to %.0f %% of %d pushes: storm, its 404/410 now hold "
                        "subscriptions as suspect instead of expiring them", host, 100 * bad / total, total)
        elif change == ENDED:
            restored = restore(session, host, now)
            log.warning("push service %s answers normally again: storm over, %d suspect subscriptions restored",
                        host, restored)
        judged = verdict(row, now, settings)
        if judged is not None:
            verdicts[host] = judged
    session.flush()
    return verdicts


class HostWindows:
    """One dispatcher's side of the shared windows: judges each batch, and writes the answers
    to ``push_hosts`` when a batch is not calm, or when the oldest unwritten one is
    ``WRITE_SECONDS`` old (``monotonic``), or on ``write``. Used from one thread (the
    dispatcher's database thread)."""

    def __init__(self, settings: StormSettings, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._monotonic = monotonic
        self._unwritten: dict[str, tuple[int, int]] = {}
        self._oldest: float | None = None

    @property
    def unwritten(self) -> bool:
        """Whether some answers wait to be written."""
        return bool(self._unwritten)

    def judge(self, session: orm.Session, tallies: Mapping[str, tuple[int, int]], now: datetime) -> dict[str, str]:
        """The ``verdict`` of each of the batch's hosts that is not calm, from the stored rows
        (not locked) plus this process's unwritten answers and the batch's ``{host: (answers,
        gone)}``, which join the unwritten ones; they are written in this session (the caller
        commits) when the batch is not calm or the oldest of them is due."""
        if not tallies:
            return {}
        for host, (answers, gone) in tallies.items():
            before = self._unwritten.get(host, (0, 0))
            self._unwritten[host] = (before[0] + answers, before[1] + gone)
        if self._oldest is None:
            self._oldest = self._monotonic()
        stored = {row.host: row for row in session.execute(
            sa.select(PushHost.__table__).where(PushHost.host.in_(sorted(tallies))))}
        verdicts = {}
        urgent = False
        for host in tallies:
            row = stored.get(host)
            copy = PushHost(**row._mapping) if row is not None else _new_row(host, now)  # never added
            urgent |= record(copy, *self._unwritten[host], now, self.settings) is not None
            judged = verdict(copy, now, self.settings)
            if judged is not None:
                verdicts[host] = judged
        if urgent or verdicts or self._monotonic() - self._oldest >= WRITE_SECONDS:
            return self.write(session, now)  # judged again on the locked rows: other workers' answers too
        return verdicts

    def write(self, session: orm.Session, now: datetime) -> dict[str, str]:
        """Add the unwritten answers to the stored rows and return ``observe``'s verdicts; the
        caller commits."""
        verdicts = observe(session, self._unwritten, now, self.settings) if self._unwritten else {}
        self._unwritten, self._oldest = {}, None
        return verdicts


def _new_row(host: str, now: datetime) -> PushHost:
    return PushHost(host=host, bucket_start=now, answers=0, gone=0, previous_answers=0, previous_gone=0,
                    baseline=None, storm_since=None, storm_until=None, updated_at=now)


def _locked(session: orm.Session, hosts: list[str]) -> dict[str, PushHost]:
    rows = session.scalars(sa.select(PushHost).where(PushHost.host.in_(hosts)).order_by(PushHost.host)
                           .with_for_update())
    return {row.host: row for row in rows}


def _insert_missing(session: orm.Session, hosts: list[str], now: datetime) -> None:
    """First answers from these hosts: their rows, unless another worker just made them."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    session.execute(insert(PushHost).values([
        {"host": h, "bucket_start": now, "answers": 0, "gone": 0, "previous_answers": 0, "previous_gone": 0,
         "updated_at": now} for h in hosts]).on_conflict_do_nothing(index_elements=["host"]))


def mark_suspect(session: orm.Session, by_host: Mapping[str, Collection[int]], now: datetime) -> None:
    """Hold these subscriptions as suspect of their host (their first suspicion's time is kept)."""
    for host, ids in by_host.items():
        if ids:
            session.execute(
                sa.update(Subscription)
                .where(Subscription.id.in_(sorted(ids)), Subscription.status == SubscriptionStatus.ACTIVE.value)
                .values(suspect_since=sa.func.coalesce(Subscription.suspect_since, now), suspect_host=host)
                .execution_options(synchronize_session=False))


def clear_suspect(session: orm.Session, ids: Iterable[int]) -> None:
    """These subscriptions were answered 2xx: whatever their host does, they are alive."""
    ids = sorted(set(ids))
    if ids:
        session.execute(
            sa.update(Subscription)
            .where(Subscription.id.in_(ids), Subscription.suspect_host.is_not(None))
            .values(suspect_since=None, suspect_host=None)
            .execution_options(synchronize_session=False))


def restore(session: orm.Session, host: str, now: datetime) -> int:
    """Clear every suspect subscription of ``host`` and make its held pushes due now; returns
    how many subscriptions were restored. The caller commits."""
    suspects = sa.select(Subscription.id).where(Subscription.suspect_host == host)
    session.execute(
        sa.update(Push)
        .where(Push.subscription_id.in_(suspects), Push.status == PushStatus.PENDING.value,
               Push.lease_until > now)
        .values(lease_until=None)
        .execution_options(synchronize_session=False))
    result = session.execute(
        sa.update(Subscription).where(Subscription.suspect_host == host)
        .values(suspect_since=None, suspect_host=None)
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def confirm(session: orm.Session, host: str, now: datetime) -> int:
    """The operator's word that ``host``'s suspect subscriptions really are gone: expire them
    (their pending pushes are cancelled); returns how many. The caller commits."""
    ids = list(session.scalars(sa.select(Subscription.id).where(Subscription.suspect_host == host)))
    expire_subscriptions(session, ids, now)
    return len(ids)


def end_storm(session: orm.Session, host: str, now: datetime) -> None:
    """End ``host``'s storm by hand and start its window afresh (after ``restore`` or
    ``confirm``): if it keeps answering gone, a new storm starts after ``min_answers`` answers."""
    session.execute(
        sa.update(PushHost).where(PushHost.host == host, PushHost.storm_since.is_not(None))
        .values(storm_since=None, storm_until=now))
    session.execute(
        sa.update(PushHost).where(PushHost.host == host)
        .values(bucket_start=now, answers=0, gone=0, previous_answers=0, previous_gone=0, updated_at=now))


@dataclass(frozen=True)
class HostState:
    """One push service as ``/healthz``, ``/metrics``, the dashboard and the CLI show it."""

    host: str
    storm_since: datetime | None
    suspects: int
    suspect_since: datetime | None  # the oldest suspicion
    answers: float  # in the window
    gone: float


def host_states(session: orm.Session, now: datetime, settings: StormSettings | None = None,
                shop_id: int | None = None) -> list[HostState]:
    """Every known push service with its storm state and suspect subscriptions (of one shop,
    or all), by host name; ``settings`` give the window's width (the defaults' otherwise)."""
    settings = settings or StormSettings()
    query = (sa.select(Subscription.suspect_host, sa.func.count(), sa.func.min(Subscription.suspect_since))
             .where(Subscription.suspect_host.is_not(None)).group_by(Subscription.suspect_host))
    if shop_id is not None:
        query = query.where(Subscription.shop_id == shop_id)
    suspects = {host: (int(n), since) for host, n, since in session.execute(query)}
    states = []
    rows = {row.host: row for row in session.scalars(sa.select(PushHost))}
    for host in sorted(set(rows) | set(suspects)):
        row = rows.get(host)
        total, bad = (0.0, 0.0)
        if row is not None:
            session.expunge(row)  # judged as of now below, never written from here
            roll(row, now, settings)
            total, bad = window(row, now, settings)
        count, since = suspects.get(host, (0, None))
        states.append(HostState(host, row.storm_since if row else None, count, _utc(since), total, bad))
    return states


def _utc(value: Any) -> datetime | None:
    """``min()`` bypasses the column type on SQLite: a naive datetime or a string comes back."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
