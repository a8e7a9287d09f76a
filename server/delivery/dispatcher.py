"""The dispatcher: one pass plans what the sweeps find, then claims, sends and records due pushes.

A pass runs the preset sweeps, then loops over batches until nothing is due (or a stop is
requested): claim a batch (committed at once, so other workers skip it), ask the send-time
policy about each row, build and cap each payload, send the batch concurrently, and write every
outcome back in one statement. The clock is injected: ``dispatch --once --at`` and the tests
drive ``now``; the worker uses the system clock.

Outcomes (DESIGN.md, "Responses are facts"):

- 2xx: ``sent``; 404/410: ``expired``, the subscription expired and its pending rows cancelled,
  unless its push service is in a storm of such answers (``server.delivery.storm``): then the
  subscription is held as suspect and the row goes back to ``pending`` for a slow retry;
- 413, 3xx, 400/401/403 and other 4xx: ``failed`` (never resent unchanged);
- 429, 5xx, timeouts and connection errors: back to ``pending``, claimable again after
  ``Retry-After`` or an exponential backoff with jitter (kept in ``lease_until``; ``due_at``
  stays the planned time), until ``max_attempts``, then ``failed``;
- a row whose ``due_at + ttl`` has passed is ``missed`` and not sent late (retries included);
- the policy may skip a row (``skipped``, reason in ``error``) or defer it (``pending`` with a
  later ``due_at``; the attempt is given back).

The worker knows what it sent: when writing a batch's outcomes fails because the database is
away (a dropped connection, a restart, a locked SQLite file), the outcomes are kept and the
write is retried with a growing pause until the database answers; each failed try renews the
batch's lease when the database lets it, so no other worker sends those rows again. Meanwhile
nothing more is claimed nor sent, so the worker holds at most the outcomes it already has, and
the batch claimed next is sent only while at least half its lease is left. Only a stop
requested while the database is still away gives up (``OutcomesNotWritten``): that batch's rows
stay ``sending`` and its lease sends them again, as after ``kill -9``.
"""
from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
from collections.abc import Mapping
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from server.core.db import Database
from server.core.errors import Invalid
from server.core.models import PushStatus
from server.core.vapid_keys import private_pems
from server.delivery import policy, storm
from server.planning import hooks
from server.core.tokens import make_click_token
from server.delivery.endpoints import check_endpoint, declarative_endpoint
from server.outbox.claim import (Claimed, Outcome, claim_due, expire_subscriptions, extend_lease, load_subscriptions,
                                 record_outcomes)
from server.delivery.payload import PayloadTooLarge, action_links, build_payload
from server.delivery.push import Message, Sender
from server.delivery.push.outcomes import GONE, HELD, RETRY, SENT, SendResult
from server.delivery.push.vapid import vapid_from_pem

log = logging.getLogger(__name__)

URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class OutcomesNotWritten(RuntimeError):
    """A stop came while the database was away: a batch's outcomes were not written (its rows
    stay ``sending`` until their lease runs out)."""


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass
class PassCounts:
    """What one pass did: the contract's ``dispatch --once`` output.

    ``skipped`` also counts rows ``missed`` (TTL passed); rows put back for a retry or a
    deferral count nowhere until their final outcome.
    """

    planned: int = 0
    sent: int = 0
    failed: int = 0
    expired: int = 0
    skipped: int = 0

    def as_json(self) -> dict[str, int]:
        """The five counts, in the contract's order."""
        return asdict(self)


@dataclass(frozen=True)
class DispatchSettings:
    """Tuning knobs, from the app config (``DISPATCH_*``, declared with their defaults and
    bounds in ``server.core.config.Settings``)."""

    batch_size: int
    # Two batches may be held at once (pipelining), each up to ceil(200 / 32) rounds of
    # connect + read timeouts (15 s) when a push service hangs: the default lease outlasts that.
    lease_seconds: float
    max_attempts: int
    backoff_base_seconds: float
    backoff_cap_seconds: float
    # Writing a batch's outcomes while the database is away: the first pause, doubling to the cap.
    record_retry_seconds: float
    record_retry_cap_seconds: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DispatchSettings:
        """Read the ``DISPATCH_*`` keys of a loaded app config."""
        return cls(
            batch_size=int(config["DISPATCH_BATCH_SIZE"]),
            lease_seconds=float(config["DISPATCH_LEASE_SECONDS"]),
            max_attempts=int(config["DISPATCH_MAX_ATTEMPTS"]),
            backoff_base_seconds=float(config["DISPATCH_BACKOFF_SECONDS"]),
            backoff_cap_seconds=float(config["DISPATCH_BACKOFF_CAP_SECONDS"]),
            record_retry_seconds=float(config["DISPATCH_RECORD_RETRY_SECONDS"]),
            record_retry_cap_seconds=float(config["DISPATCH_RECORD_RETRY_CAP_SECONDS"]),
        )


def safe_topic(topic: str | None) -> str | None:
    """A ``Topic`` header value (RFC 8030: at most 32 base64url characters), or None."""
    if not topic:
        return None
    if _TOPIC.match(topic):
        return topic
    return hashlib.sha256(topic.encode("utf-8")).hexdigest()[:32]


@dataclass
class _Batch:
    """One claimed batch between the claim and the record."""

    claimed: int
    send_by: datetime  # half its lease after the claim: later, another worker may take its rows
    outcomes: list[Outcome] = field(default_factory=list)
    to_send: list[tuple[Claimed, Message]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    prepared: Any = None  # what the sender's ``prepare`` made of ``messages``
    suspects: set[int] = field(default_factory=set)  # subscriptions a push service storm holds


class Dispatcher:
    """Runs passes over the outbox for one process. Thread-safe to stop, not to run twice at once."""

    def __init__(self, database: Database, sender: Sender, config: Mapping[str, Any], clock: Clock,
                 settings: DispatchSettings | None = None, rng: random.Random | None = None) -> None:
        self.database = database
        self.sender = sender
        self.config = config
        self.clock = clock
        self.settings = settings or DispatchSettings.from_config(config)
        self.storm = storm.StormSettings.from_config(config)
        self._hosts = storm.HostWindows(self.storm)  # touched by the database thread only
        worst = (2 * -(-self.settings.batch_size // int(config["PUSH_CONCURRENCY"]))
                 * (float(config["PUSH_CONNECT_TIMEOUT"]) + float(config["PUSH_READ_TIMEOUT"])))
        if self.settings.lease_seconds < worst:
            log.warning("lease of %.0f s is shorter than two stalled batches (%.0f s): a hung push service "
                        "could let another worker claim rows still in flight", self.settings.lease_seconds, worst)
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._sweeps = bool(config["DISPATCH_SWEEPS"])  # off in all but one `worker` process
        self._public_url = str(config["PUBLIC_URL"]).rstrip("/")
        self._secret = str(config["SECRET_KEY"])
        self._declarative_hosts = tuple(config["PUSH_DECLARATIVE_HOSTS"])  # Apple's: the declarative payload
        self._db: ThreadPoolExecutor | None = None
        self._unwritten = 0  # outcomes held while the database is away
        # A worker whose own connection was dropped tries again well within its lease, so no
        # other worker can take (and send again) the rows it is writing.
        self._retry_cap = min(self.settings.record_retry_cap_seconds, self.settings.lease_seconds / 10)
        self._vapid: dict[int, Any] = {}  # shops' VAPID keys by id, loaded once (a key never changes)

    @property
    def unwritten_outcomes(self) -> int:
        """How many outcomes of sent pushes wait for the database to come back (0 normally)."""
        return self._unwritten

    def request_stop(self) -> None:
        """Claim nothing more; the batches already claimed are sent and recorded (SIGTERM)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stop.is_set()

    def run_pass(self) -> PassCounts:
        """Run the sweeps, then send everything due; return the counts.

        Three threads share a pass, each doing what it is best at: the database thread
        (``pushcart-db``) claims a batch, asks the policy and builds its payloads, and writes
        each batch's outcomes as soon as its sends end; this thread encrypts; the sender's
        thread is on the network. Batch N+1 is claimed while batch N is encrypted, so the
        database's waits overlap the CPU work. The database thread runs its tasks in the
        order they were handed to it (claim N+1 is handed over before record N), which keeps
        two rules:

        - at most two batches are claimed at a time: a claim runs only after the batch two
          before it is recorded;
        - only one batch is on the network: batch N starts once batch N-1 is recorded, so a
          killed worker sends at most one batch twice;
        - a batch is sent only within the first half of its lease: one that waited longer (the
          outcomes before it waited for the database) is left to its lease, never sent late
          beside another worker that claimed its rows again.

        A stop (SIGTERM) claims nothing more; the batches already claimed are sent and
        recorded before the pass returns. While a batch's outcomes wait for the database (see
        ``_write``), the next batch waits too. Raises ``OutcomesNotWritten`` when a stop came
        while the database was away, and the database's errors of a claim or a sweep.
        """
        counts = PassCounts()
        if self._sweeps:
            with self.database.sessionmaker() as session:
                counts.planned = int(hooks.run_sweeps(session, self.clock.now(), self.config) or 0)
                session.commit()
        if self._stop.is_set():
            return counts
        db = self._db_thread()
        claims: deque[Future[_Batch | None]] = deque([db.submit(self._claim)])
        recorded: Future[None] | None = None  # the batch on the network, recorded when its sends end
        more = True  # no claim came back short yet
        try:
            while claims:
                batch = claims.popleft().result()
                if batch is None or batch.claimed < self.settings.batch_size:
                    more = False  # everything due was taken
                if batch is None:
                    continue
                if more and not self._stop.is_set():
                    claims.append(db.submit(self._claim))  # runs after the previous batch is recorded
                batch.prepared = self.sender.prepare(batch.messages)  # the encryption, in this thread
                if recorded is not None:
                    recorded.result()
                    recorded = None
                if self.clock.now() > batch.send_by:
                    # It waited for the write before it (the database was away) for so long that
                    # its lease may run out while it is sent: leave its rows to the lease.
                    log.warning("a batch of %d waited too long after its claim to be sent; its rows "
                                "are claimed again when their lease runs out", batch.claimed)
                    continue
                sending = self.sender.start(batch.prepared)
                recorded = db.submit(self._finish, batch, sending, counts)
        finally:
            for claim in claims:  # after an error: let the database thread finish what it holds
                claim.exception()
            if recorded is not None:
                recorded.result()
        if self._hosts.unwritten:
            db.submit(self._write_hosts).result()
        return counts

    def _write_hosts(self) -> None:
        """Add this pass's last calm answers to the push services' shared windows (``storm``)."""
        with self.database.sessionmaker() as session:
            self._hosts.write(session, self.clock.now())
            session.commit()

    def _db_thread(self) -> ThreadPoolExecutor:
        """The database thread of this dispatcher (one, so its tasks run in order)."""
        if self._db is None:
            self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pushcart-db")
        return self._db

    def _claim(self) -> _Batch | None:
        """Claim a batch and decide each row up to the encryption; None when nothing is due."""
        if self._stop.is_set():  # a claim handed over before a stop: nothing more is claimed
            return None
        settings = self.settings
        now = self.clock.now()
        with self.database.sessionmaker() as session:
            pushes = claim_due(session, now, settings.batch_size, timedelta(seconds=settings.lease_seconds))
            subscriptions = load_subscriptions(session, pushes)
            self._load_vapid_keys(session, subscriptions)
            session.commit()
            if not pushes:
                return None
            batch = _Batch(claimed=len(pushes), send_by=now + timedelta(seconds=settings.lease_seconds / 2))
            eligible = []
            for push in pushes:
                outcome = self._precheck(push, now)
                if outcome is not None:
                    batch.outcomes.append(outcome)
                else:
                    eligible.append(push)
            try:
                # The whole batch in one call: a few queries per batch, not per row.
                decisions = dict(zip((p.id for p in eligible),
                                     policy.gate_many(session, eligible, now, subscriptions=subscriptions)))
            except Exception:
                log.exception("send-time policy failed for a batch of %d; retrying later", len(eligible))
                batch.outcomes.extend(self._retry(p, now, None, "policy error", None) for p in eligible)
                eligible, decisions = [], {}
            for push in eligible:
                outcome = self._before_send(push, decisions[push.id], subscriptions, now, batch.to_send)
                if outcome is not None:
                    batch.outcomes.append(outcome)
            session.commit()  # end the policy's (read-only) transaction
        batch.suspects = {sub.id for sub in subscriptions.values() if sub.suspect_since is not None}
        batch.messages = [message for _, message in batch.to_send]
        return batch

    def _load_vapid_keys(self, session: Any, subscriptions: Mapping[int, Any]) -> None:
        """Load the shops' keys these subscriptions were made with (each once per process)."""
        missing = {s.vapid_key_id for s in subscriptions.values()
                   if s.vapid_key_id is not None and s.vapid_key_id not in self._vapid}
        for key_id, pem in private_pems(session, missing).items():
            self._vapid[key_id] = vapid_from_pem(pem)

    def _finish(self, batch: _Batch, future: Future[list[SendResult]], counts: PassCounts) -> None:
        """Wait for a batch's sends, then write every outcome of it in one transaction (on the
        database thread): the push services' answer windows first (``storm``), since whether a
        404/410 expires its subscription depends on them."""
        results = future.result()
        done = self.clock.now()
        outcomes = batch.outcomes
        hosts = [storm.origin(message.endpoint) for _, message in batch.to_send]
        tallies: dict[str, tuple[int, int]] = {}
        for host, result in zip(hosts, results):
            if result.http_status is not None:  # an answer (not a timeout, not held back)
                answers, gone_answers = tallies.get(host, (0, 0))
                tallies[host] = (answers + 1, gone_answers + (result.outcome == GONE))
        gone: set[int] = set()
        suspects: dict[str, set[int]] = {}
        alive: set[int] = set()
        verdicts = self._judge(tallies, done)
        for (push, _message), result, host in zip(batch.to_send, results, hosts):
            sub = push.subscription_id
            verdict = verdicts.get(host)
            # Held: in a storm; or too early to judge, unless this one was held already.
            if result.outcome == GONE and sub is not None and (
                    verdict == storm.STORM or verdict == storm.UNSURE and sub not in batch.suspects):
                outcomes.append(self._hold(push, result, done))
                suspects.setdefault(host, set()).add(sub)
                continue
            outcomes.append(self._after_send(push, result, done))
            if result.outcome == GONE and sub is not None:
                gone.add(sub)
            elif result.outcome == SENT and sub in batch.suspects:
                alive.add(sub)
        cancelled = self._write(outcomes, gone, done, suspects, alive)
        for outcome in outcomes:
            self._count(counts, outcome.status)
        held = sum(len(ids) for ids in suspects.values())
        log.info("batch: %d claimed, %d sent, %d subscriptions expired, %d pending rows cancelled, "
                 "%d held as suspect (push service storm)",
                 batch.claimed, sum(1 for r in results if r.outcome == SENT), len(gone), cancelled, held)

    def _judge(self, tallies: Mapping[str, tuple[int, int]], now: datetime) -> dict[str, str]:
        """The storm verdicts of the batch's push services (``storm.HostWindows.judge``), in a
        transaction of their own. While the database is away every host counts as unsure: a
        404/410 is held once rather than expiring a subscription unjudged."""
        if not tallies:
            return {}
        try:
            with self.database.sessionmaker() as session:
                verdicts = self._hosts.judge(session, tallies, now)
                session.commit()
                return verdicts
        except sa.exc.DBAPIError as exc:
            if not _database_away(exc):
                raise
            log.warning("could not judge the push services' answers (%s): gone answers are held once", _reason(exc))
            return {host: storm.UNSURE for host in tallies}

    def _write(self, outcomes: list[Outcome], gone: set[int], now: datetime, suspects: Mapping[str, set[int]],
               alive: set[int]) -> int:
        """Write a batch's outcomes, expire its gone subscriptions and mark (or clear) the ones a
        push service storm holds as suspect, in one transaction; return how many pending rows
        were cancelled.

        While the database is away (a dropped connection, a restart, a locked SQLite file) the
        outcomes are kept and the write tried again after a pause that doubles up to
        ``record_retry_cap_seconds`` (and a tenth of the lease), for as long as it takes: the
        caller sends nothing more meanwhile. Writing twice is harmless (each row's write is
        guarded by its claim), so a commit whose answer was lost is simply written again. Past
        the lease, another worker that reaches the database may claim those rows again; this
        write then leaves that claim alone. Raises ``OutcomesNotWritten`` when
        a write fails after a stop was requested, and other database errors (bugs) as they are.
        """
        pause = min(self.settings.record_retry_seconds, self._retry_cap)
        failures = 0
        while True:
            try:
                with self.database.sessionmaker() as session:
                    record_outcomes(session, outcomes)
                    cancelled = expire_subscriptions(session, gone, now)
                    storm.mark_suspect(session, suspects, now)
                    storm.clear_suspect(session, alive)
                    session.commit()
            except sa.exc.DBAPIError as exc:
                if not _database_away(exc):
                    raise
                failures += 1
                self._unwritten = len(outcomes)
                if self._stop.is_set():
                    self._unwritten = 0
                    log.error("gave up writing the outcomes of %d sent pushes after %d failed tries (%s): "
                              "stopping; their rows stay 'sending' and are sent again when their lease "
                              "runs out", len(outcomes), failures, _reason(exc))
                    raise OutcomesNotWritten(f"{len(outcomes)} outcomes not written") from None
                self._keep_claim(outcomes)
                wait = self._rng.uniform(pause / 2, pause)  # jitter: workers of one outage spread out
                log.warning("writing the outcomes of %d sent pushes failed (%s); holding them, sending "
                            "nothing more, next try in %.2f s", len(outcomes), _reason(exc), wait)
                self._stop.wait(wait)
                pause = min(self._retry_cap, pause * 2)
                continue
            if failures:
                log.warning("outcomes of %d sent pushes written after %d failed tries", len(outcomes), failures)
            self._unwritten = 0
            return cancelled

    def _keep_claim(self, outcomes: list[Outcome]) -> None:
        """Renew the lease of rows whose outcomes wait, so no other worker claims them and sends
        them again meanwhile; best effort (the database may well refuse this too)."""
        until = self.clock.now() + timedelta(seconds=self.settings.lease_seconds)
        try:
            with self.database.sessionmaker() as session:
                extend_lease(session, ((o.push_id, o.claimed_attempts) for o in outcomes), until)
                session.commit()
        except sa.exc.DBAPIError as exc:
            if not _database_away(exc):
                raise
            log.info("could not renew the lease of %d rows whose outcomes wait (%s)", len(outcomes), _reason(exc))

    # -- one row ---------------------------------------------------------------------------

    def _precheck(self, push: Claimed, now: datetime) -> Outcome | None:
        """Rows that are final before any policy: TTL passed, or too many attempts."""
        if push.due_at + timedelta(seconds=push.ttl) < now:
            return self._final(push, PushStatus.MISSED.value, "ttl passed before it could be sent")
        if push.attempts > self.settings.max_attempts:
            # Only reachable by reclaiming rows from workers that died mid-batch, again and again.
            return self._final(push, PushStatus.FAILED.value, f"gave up after {push.attempts - 1} attempts")
        return None

    def _before_send(self, push: Claimed, decision: policy.Decision, subscriptions: Mapping[int, Any],
                     now: datetime, to_send: list[tuple[Claimed, Message]]) -> Outcome | None:
        """Decide a row before the network: an ``Outcome`` now, or None when it joins ``to_send``."""
        if decision.action == "skip":
            return self._final(push, PushStatus.SKIPPED.value, decision.reason or "policy")
        if decision.action == "defer":
            until = max(decision.until or now, now + timedelta(seconds=1))
            return self._put_back(push, until, decision.reason)
        subscription = subscriptions.get(push.subscription_id) if push.subscription_id else None
        if subscription is None:
            return self._final(push, PushStatus.FAILED.value, "no subscription")
        try:
            check_endpoint(subscription.endpoint, self.config)
        except Invalid as exc:
            log.warning("push %s: subscription %s endpoint refused at send time", push.id, subscription.id)
            return self._final(push, PushStatus.FAILED.value, f"endpoint not allowed: {exc.message}")
        try:
            click = f"{self._public_url}/c/{make_click_token(self._secret, push.id)}"
            payload = build_payload(
                push_id=push.id, kind=push.kind, title=push.title, body=push.body, url=click,
                icon=push.icon, image=push.image, tag=push.topic, actions=action_links(click, push.actions),
                declarative=declarative_endpoint(subscription.endpoint, self._declarative_hosts))
        except PayloadTooLarge as exc:
            return self._final(push, PushStatus.FAILED.value, str(exc))
        to_send.append((push, Message(
            push_id=push.id, endpoint=subscription.endpoint, p256dh=subscription.p256dh,
            auth=subscription.auth, payload=payload, ttl=push.ttl,
            urgency=push.urgency if push.urgency in URGENCIES else "normal", topic=safe_topic(push.topic),
            vapid=self._vapid.get(subscription.vapid_key_id) if subscription.vapid_key_id is not None else None)))
        return None

    def _after_send(self, push: Claimed, result: SendResult, now: datetime) -> Outcome:
        if result.outcome == SENT:
            return Outcome(push.id, push.attempts, PushStatus.SENT.value, push.attempts, push.due_at,
                           result.http_status, None, now)
        if result.outcome == GONE:
            return self._final(push, PushStatus.EXPIRED.value, result.error, result.http_status)
        if result.outcome == HELD:  # not sent: the attempt is given back
            return Outcome(push.id, push.attempts, PushStatus.PENDING.value, push.attempts - 1, push.due_at,
                           None, result.error, retry_at=now + timedelta(seconds=result.retry_after or 60))
        if result.outcome == RETRY:
            return self._retry(push, now, result.http_status, result.error, result.retry_after)
        return self._final(push, PushStatus.FAILED.value, result.error, result.http_status)

    def _hold(self, push: Claimed, result: SendResult, now: datetime) -> Outcome:
        """A 404/410 during its push service's storm: pending again after the slow retry time,
        the attempt given back (the TTL, not the attempts, ends a push held this way)."""
        return Outcome(push.id, push.attempts, PushStatus.PENDING.value, push.attempts - 1, push.due_at,
                       result.http_status, "held: its push service answers gone to many pushes (a storm?)",
                       retry_at=now + timedelta(seconds=self.storm.retry_seconds))

    def _final(self, push: Claimed, status: str, error: str | None, http_status: int | None = None) -> Outcome:
        return Outcome(push.id, push.attempts, status, push.attempts, push.due_at, http_status, error)

    def _put_back(self, push: Claimed, until: datetime, reason: str | None) -> Outcome:
        """Pending again at ``until``, without spending the attempt this claim took."""
        return Outcome(push.id, push.attempts, PushStatus.PENDING.value, push.attempts - 1, until, None, reason)

    def _retry(self, push: Claimed, now: datetime, http_status: int | None, error: str | None,
               retry_after: float | None) -> Outcome:
        if push.attempts >= self.settings.max_attempts:
            return self._final(push, PushStatus.FAILED.value,
                               f"gave up after {push.attempts} attempts: {error}", http_status)
        if retry_after is not None:
            delay = max(1.0, retry_after)
        else:
            ceiling = min(self.settings.backoff_cap_seconds,
                          self.settings.backoff_base_seconds * 2 ** (push.attempts - 1))
            delay = self._rng.uniform(ceiling / 2, ceiling)  # jitter: retries of one outage spread out
        return Outcome(push.id, push.attempts, PushStatus.PENDING.value, push.attempts, push.due_at,
                       http_status, error, retry_at=now + timedelta(seconds=delay))

    @staticmethod
    def _count(counts: PassCounts, status: str) -> None:
        if status == PushStatus.SENT.value:
            counts.sent += 1
        elif status == PushStatus.FAILED.value:
            counts.failed += 1
        elif status == PushStatus.EXPIRED.value:
            counts.expired += 1
        elif status in (PushStatus.SKIPPED.value, PushStatus.MISSED.value):
            counts.skipped += 1


def _database_away(exc: sa.exc.DBAPIError) -> bool:
    """Whether an error means the database is away (worth waiting for), not that the statement
    is wrong: a lost or refused connection, a server shutting down, a locked SQLite file."""
    return exc.connection_invalidated or isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))


def _reason(exc: sa.exc.DBAPIError) -> str:
    """The driver's error class and first line: no statement, no values (they may hold endpoints)."""
    first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
    return f"{type(exc.orig).__name__}: {first[:160]}"
