"""Fault runs of the delivery path, counted: nothing planned is lost, nothing is sent twice.

    .venv/bin/python bench/fault_runs.py clock-jump  [--subscribers 200]
    .venv/bin/python bench/fault_runs.py pg-restart  [--pushes 3000]   # restarts the local PostgreSQL!
    .venv/bin/python bench/fault_runs.py pg-drop     [--pushes 3000] [--write-drops 25] [--drop-every 1]
    .venv/bin/python bench/fault_runs.py collect-pg-restart [--seconds 12]   # restarts it too
    .venv/bin/python bench/fault_runs.py push-404-storm [--subscribers 1000] [--storm-seconds 6] [--gone-percent 3]

Both run on loopback against ``tests/fakepush.py`` (a push service that decrypts every push and
counts each ``push_id`` it accepted), on a fresh PostgreSQL schema dropped at the end
(``BENCH_DATABASE_URL``, default the local ``test`` database).

clock-jump: pushes are planned over a day, then the clock jumps 24 h forward and the dispatcher
runs passes until nothing is due. Per subscriber: a ``shipped`` push whose TTL (4 h) ran out
before the jump (must be ``missed``), a ``shipped`` push still alive (``sent``), and four
``repurchase`` pushes of which the frequency cap (3 marketing per 24 h) lets three out. The
sender is wrapped to record batch sizes (never above ``DISPATCH_BATCH_SIZE``).

pg-restart: a real ``flask --app wsgi worker`` process sends a backlog; a quarter of the way
through, PostgreSQL is restarted (``pg_ctlcluster --skip-systemctl-redirect <ver> main restart``).
The worker must reconnect (``pool_pre_ping``) and finish; rows left ``sending`` by the batch the
restart interrupted are reclaimed after their lease, so the only duplicates allowed are pushes of
that one batch. PostgreSQL is always started again at the end. It briefly takes the database away
from everything else on the machine: run it alone.

pg-drop: the same worker and backlog as pg-restart (``--pushes``, ``--batch-size``, ``--lease``,
``--delay``, ``--timeout`` apply), while a thread on a connection of its own ends the worker's
connections with ``pg_terminate_backend`` (they are found by an ``application_name`` added to the
worker's ``DATABASE_URL``): every outcome write it catches in ``pg_stat_activity`` (the batch
UPDATE running, or done and not yet committed), up to ``--write-drops``, and all of the worker's
connections every ``--drop-every`` seconds (0.5 to 1.5 times, seeded by ``--seed``), which also
hits claims and sweeps. The database itself stays up, so the worker keeps the outcomes it could
not write and writes them on a new connection: no duplicate is allowed (nor any lost push). It
also prints how many drops of each kind it made and how many outcome writes the worker held
and wrote again (``holding them`` in its log). It leaves other databases and sessions alone.

collect-pg-restart: the collect API under gunicorn (2 workers, the events journal on) with wrk
posting events; a third of the way through, PostgreSQL is restarted. The answers keep coming
from the journal; afterwards every accepted event must be in the database (an event id is
unique, so none is there twice) and no journal file may be left once the server stopped.

push-404-storm: a push service's bad day (FCM, 2024-06-26). A real ``flask --app wsgi worker``
process sends one push to each subscriber while the fake push service answers 404 to every
request for ``--storm-seconds``, then 201 again; ``--gone-percent`` of the subscribers really are
gone (404 throughout). The storm guard's thresholds are shortened to fit seconds, not hours
(a window of 1 s, a retry every 3 s). It prints ``subscribers_lost`` (valid subscribers
expired: must be 0), the really gone ones expired (all of them), and the pushes delivered.

The delivery runs print ``planned = sent + missed + failed + expired + skipped`` and the
duplicate count; the collect run prints accepted and stored events.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from server.core.models import Base, Push, PushStatus
from tests.factories import make_shop, make_subscription, make_visitor  # noqa: E402
from tests.fakepush import FakePushService, Reply  # noqa: E402

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FINAL = ("sent", "missed", "failed", "expired", "skipped", "cancelled")


def with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def status_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(Push.status, sa.func.count()).group_by(Push.status)).all()
        return {status: int(n) for status, n in rows}
    finally:
        engine.dispose()


def add_push(session, sub, kind: str, due: datetime, ttl: int, now: datetime) -> None:
    session.add(Push(shop_id=sub.shop_id, visitor_id=sub.visitor_id, subscription_id=sub.id, kind=kind,
                     dedupe_key=f"bench:{secrets.token_hex(8)}", group_key=f"bench:{secrets.token_hex(8)}",
                     title="Your order", body="Bench push", url="https://shop.example/", due_at=due, ttl=ttl,
                     created_at=now, status=PushStatus.PENDING.value))


def summary(planned: int, counts: dict[str, int], delivered: collections.Counter, extra: dict) -> dict:
    """The closing counts and the two checks."""
    final = {k: counts.get(k, 0) for k in FINAL}
    open_rows = counts.get("pending", 0) + counts.get("sending", 0)
    duplicates = sum(n - 1 for n in delivered.values() if n > 1)
    balance = sum(final.values()) + open_rows
    result = {"planned": planned, **final, "open": open_rows, "delivered_distinct": len(delivered),
              "duplicates": duplicates, "balanced": balance == planned and open_rows == 0,
              "sent_matches_delivered": final["sent"] == len(delivered), **extra}
    print(json.dumps(result, indent=2))
    return result


class RecordingSender:
    """The real sender, with the size of every batch it is handed recorded."""

    def __init__(self, real) -> None:
        self.real = real
        self.batches: list[int] = []

    def prepare(self, messages):
        self.batches.append(len(messages))
        return self.real.prepare(messages)

    def start(self, prepared):
        return self.real.start(prepared)

    def close(self) -> None:
        self.real.close()


def clock_jump(args: argparse.Namespace, url: str, vapid_file: str) -> dict:
    from server import create_app
    from server.core.clock import FrozenClock
    from server.core.db import get_db
    from server.delivery.runtime import SENDER, close_delivery, get_dispatcher
    from server.delivery.push.transport import WebPushSender, sender_options
    from server.delivery.push.vapid import get_vapid

    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    clock = FrozenClock(t0)
    batch_size = 50
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "VAPID_PRIVATE_KEY_FILE": vapid_file,
                      "VAPID_SUBJECT": "mailto:bench@pushcart.test", "PUBLIC_URL": "http://127.0.0.1:9",
                      "INSTANCE_PATH": str(Path(vapid_file).parent / "instance"), "CLOCK": clock,
                      "PUSHCART_INSECURE_ENDPOINTS": True, "DISPATCH_BATCH_SIZE": batch_size,
                      "LOG_LEVEL": "WARNING"})
    with FakePushService() as fake:
        with get_db(app).sessionmaker() as session:
            shop = make_shop(session, t0).shop
            for i in range(args.subscribers):
                visitor = make_visitor(session, shop.id, t0)
                sub = make_subscription(session, visitor, t0, endpoint=fake.endpoint(f"s{i}"), keys=fake.keys())
                add_push(session, sub, "shipped", t0 + timedelta(hours=2), 4 * 3600, t0)   # TTL runs out
                add_push(session, sub, "shipped", t0 + timedelta(hours=23), 4 * 3600, t0)  # still alive
                for hours in (1, 6, 12, 20):  # four marketing pushes; the cap lets three out
                    add_push(session, sub, "repurchase", t0 + timedelta(hours=hours), 48 * 3600, t0)
            session.commit()
        planned = args.subscribers * 6
        recorder = RecordingSender(WebPushSender(get_vapid(app), "mailto:bench@pushcart.test",
                                                 **sender_options(app.config)))
        app.extensions[SENDER] = recorder
        clock.set(t0 + timedelta(hours=24))  # the jump
        started = time.monotonic()
        passes = []
        try:
            dispatcher = get_dispatcher(app)
            for _ in range(50):
                counts = dispatcher.run_pass().as_json()
                passes.append(counts)
                if not any(counts.values()):
                    break
        finally:
            close_delivery(app)
        elapsed = time.monotonic() - started
        delivered = fake.push_id_counts()
        per_sub = collections.Counter()
        with get_db(app).sessionmaker() as session:
            for sub_id, n in session.execute(
                    sa.select(Push.subscription_id, sa.func.count())
                    .where(Push.kind == "repurchase", Push.status == "sent").group_by(Push.subscription_id)):
                per_sub[n] += 1
            missed_ok = session.scalar(sa.select(sa.func.count()).select_from(Push).where(
                Push.kind == "shipped", Push.due_at == t0 + timedelta(hours=2), Push.status != "missed")) == 0
    get_db(app).dispose()
    extra = {"passes": len(passes), "seconds": round(elapsed, 2), "max_batch": max(recorder.batches or [0]),
             "batch_limit": batch_size, "batches": len(recorder.batches),
             "marketing_sent_per_subscriber": dict(per_sub), "expired_ttl_all_missed": missed_ok}
    return summary(planned, status_counts(url), delivered, extra)


def pg_version() -> str:
    versions = sorted(os.listdir("/etc/postgresql"))
    return versions[-1]


def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-t", "1"],
                          capture_output=True).returncode == 0


def ensure_pg_up() -> None:
    """Start the cluster if it is not answering (the run must never leave it down)."""
    for _ in range(30):
        if pg_ready():
            return
        time.sleep(1)
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", "start"],
                   capture_output=True, timeout=60)
    for _ in range(30):
        if pg_ready():
            return
        time.sleep(1)
    raise RuntimeError("PostgreSQL did not come back")


def seed_backlog(url: str, fake: FakePushService, count: int, now: datetime, ttl: int = 86400,
                 setup: Any = None) -> set[int]:
    """One shop, ``count`` subscribers on ``fake`` and one due push each (``setup(i, sub)`` may
    script a subscriber); returns the subscription ids ``setup`` answered true for."""
    from server.core.db import Database

    marked = set()
    database = Database(url)
    with database.sessionmaker() as session:
        shop = make_shop(session, now).shop
        for i in range(count):
            visitor = make_visitor(session, shop.id, now)
            sub = make_subscription(session, visitor, now, endpoint=fake.endpoint(f"s{i}"), keys=fake.keys())
            add_push(session, sub, "shipped", now - timedelta(seconds=1), ttl, now)
            if setup is not None and setup(i, sub):
                marked.add(sub.id)
        session.commit()
    database.dispose()
    return marked


def start_worker(url: str, vapid_file: str, options: list[str], **env_extra: str) -> tuple[subprocess.Popen, Path]:
    """A real ``flask --app wsgi worker`` on ``url`` (its own session group), logging to a file."""
    env = {**os.environ, "DATABASE_URL": url, "PUSHCART_SECRET_KEY": "bench", "VAPID_PRIVATE_KEY_FILE": vapid_file,
           "VAPID_SUBJECT": "mailto:bench@pushcart.test", "PUSHCART_INSECURE_ENDPOINTS": "1",
           "PUBLIC_URL": "http://127.0.0.1:9", "LOG_LEVEL": "INFO", **env_extra}
    log_path = Path(vapid_file).parent / "worker.log"
    cmd = [str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi", "worker", *options]
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    return worker, log_path


def stop_worker(worker: subprocess.Popen) -> None:
    """SIGTERM to the worker's group; SIGKILL when it has not exited 30 s later."""
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)


def pg_restart(args: argparse.Namespace, url: str, vapid_file: str) -> dict:
    from server.core.clock import utcnow

    now = utcnow()
    with FakePushService() as fake:
        fake.default = Reply(delay=args.delay)  # a push service some milliseconds away
        seed_backlog(url, fake, args.pushes, now)
        worker, log_path = start_worker(url, vapid_file, ["--interval", "0.5", "--batch-size", str(args.batch_size),
                                                          "--lease", str(args.lease), "--concurrency", "8"])
        restarted = None
        started = time.monotonic()
        try:
            while time.monotonic() - started < args.timeout:
                time.sleep(0.3)
                accepted = sum(1 for r in list(fake.requests) if 200 <= r.status < 300)
                if args.no_restart and restarted is None:
                    restarted = {"skipped": True}
                if restarted is None and accepted >= args.pushes // 4:
                    t = time.monotonic()
                    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", "restart"],
                                   capture_output=True, timeout=90, check=True)
                    restarted = {"at_delivered": accepted, "restart_seconds": round(time.monotonic() - t, 2)}
                    print(f"PostgreSQL restarted after {accepted} deliveries", flush=True)
                if restarted is not None and pg_ready():
                    try:
                        counts = status_counts(url)
                    except sa.exc.OperationalError:
                        continue  # still starting up
                    if counts.get("pending", 0) + counts.get("sending", 0) == 0:
                        break
        finally:
            ensure_pg_up()
            stop_worker(worker)
        elapsed = time.monotonic() - started
        delivered = fake.push_id_counts()
    worker_log = log_path.read_text(errors="replace")
    duplicates = sum(n - 1 for n in delivered.values() if n > 1)
    extra = {"seconds": round(elapsed, 2), "restart": restarted, "batch_size": args.batch_size,
             "duplicates_within_one_batch": duplicates <= args.batch_size,
             "worker_errors_logged": worker_log.count("dispatch pass failed"),
             "worker_exit_code": worker.returncode}
    return summary(args.pushes, status_counts(url), delivered, extra)


def pg_drop(args: argparse.Namespace, url: str, vapid_file: str) -> dict:
    """A worker sends a backlog while its database connections are ended again and again
    (``pg_terminate_backend`` from another connection): every push is delivered exactly once."""
    import random
    import threading

    from server.core.clock import utcnow

    now = utcnow()
    name = f"pushcart_drop_{os.getpid()}"  # the worker's connections, and only they, carry it
    with FakePushService() as fake:
        fake.default = Reply(delay=args.delay)
        seed_backlog(url, fake, args.pushes, now)
        options = ["--interval", "0.5", "--batch-size", str(args.batch_size), "--lease", str(args.lease),
                   "--concurrency", "8"]
        drops = {"all_backends": 0, "outcome_writes": 0, "backends_ended": 0}
        done = threading.Event()
        # Outcome writes: the batch UPDATE running, or written and not yet committed.
        writes = sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name "
                         "AND state IN ('active', 'idle in transaction') AND query LIKE '%FROM unnest(%'")
        everyone = sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name")
        rng = random.Random(args.seed)

        def drop() -> None:
            """From a connection of its own: end each outcome write it catches (up to
            ``--write-drops``), and every connection of the worker every ``--drop-every`` s."""
            admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
            next_all = time.monotonic() + rng.uniform(0.5, 1.5) * args.drop_every
            try:
                with admin.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                    while not done.is_set():
                        if drops["outcome_writes"] < args.write_drops:
                            ended = len(conn.execute(writes, {"name": name}).all())
                            drops["outcome_writes"] += ended
                            drops["backends_ended"] += ended
                        if time.monotonic() >= next_all:
                            drops["all_backends"] += 1
                            drops["backends_ended"] += len(conn.execute(everyone, {"name": name}).all())
                            next_all = time.monotonic() + rng.uniform(0.5, 1.5) * args.drop_every
                        done.wait(0.003)
            finally:
                admin.dispose()

        worker, log_path = start_worker(f"{url}&application_name={name}", vapid_file, options)
        dropper = threading.Thread(target=drop, name="pg-drop")
        started = time.monotonic()
        dropper.start()
        try:
            while time.monotonic() - started < args.timeout:
                time.sleep(0.3)
                counts = status_counts(url)
                if counts.get("pending", 0) + counts.get("sending", 0) == 0:
                    break
        finally:
            done.set()
            dropper.join(10)
            stop_worker(worker)
        elapsed = time.monotonic() - started
        delivered = fake.push_id_counts()
    worker_log = log_path.read_text(errors="replace")
    extra = {"seconds": round(elapsed, 2), "drops": drops, "batch_size": args.batch_size, "lease": args.lease,
             "outcome_writes_held": worker_log.count("holding them"),
             "outcome_writes_given_up": worker_log.count("gave up writing"),
             "batches_left_to_their_lease": worker_log.count("waited too long after its claim"),
             "worker_passes_failed": worker_log.count("dispatch pass failed"),
             "worker_exit_code": worker.returncode}
    return summary(args.pushes, status_counts(url), delivered, extra)


def push_404_storm(args: argparse.Namespace, url: str, vapid_file: str) -> dict:
    """404 to everything for a while, then 201: no valid subscriber lost, the really gone expired."""
    from server.core.clock import utcnow
    from server.core.models import Subscription

    now = utcnow()
    gone_count = args.subscribers * args.gone_percent // 100
    with FakePushService() as fake:
        fake.default = Reply(404)

        def really_gone(i: int, sub: Any) -> bool:
            if i < gone_count:  # 404 to every try, before, during and after the storm
                fake.script(f"s{i}", *[Reply(404)] * 50)
            return i < gone_count

        gone_ids = seed_backlog(url, fake, args.subscribers, now, ttl=3600, setup=really_gone)
        worker, log_path = start_worker(url, vapid_file, ["--interval", "0.2", "--batch-size", str(args.batch_size),
                                                          "--concurrency", "8"],
                                        PUSH_STORM_WINDOW_SECONDS="1", PUSH_STORM_RETRY_SECONDS="3")
        started = time.monotonic()
        storm_requests = None
        try:
            while time.monotonic() - started < args.timeout:
                time.sleep(0.3)
                if storm_requests is None and time.monotonic() - started >= args.storm_seconds:
                    storm_requests = len(fake.requests)
                    fake.default = Reply(201)
                    print(f"push service answers 201 again after {storm_requests} answers of 404", flush=True)
                if storm_requests is not None:
                    counts = status_counts(url)
                    if counts.get("pending", 0) + counts.get("sending", 0) == 0:
                        break
        finally:
            stop_worker(worker)
        elapsed = time.monotonic() - started
        delivered = fake.push_id_counts()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        subs = conn.execute(sa.select(Subscription.id, Subscription.status, Subscription.suspect_host)).all()
    engine.dispose()
    expired = {row.id for row in subs if row.status == "expired"}
    worker_log = log_path.read_text(errors="replace")
    extra = {"seconds": round(elapsed, 2), "subscribers": args.subscribers, "storm_seconds": args.storm_seconds,
             "answers_404_during_storm": storm_requests, "requests": len(fake.requests),
             "subscribers_lost": len(expired - gone_ids), "really_gone": len(gone_ids),
             "really_gone_expired": len(expired & gone_ids),
             "still_suspect": sum(1 for row in subs if row.suspect_host is not None),
             "storms_logged": worker_log.count("storm, its 404/410"), "storm_ends_logged": worker_log.count("storm over"),
             "worker_exit_code": worker.returncode}
    result = summary(args.subscribers, status_counts(url), delivered, extra)
    result["balanced"] = (result["balanced"] and result["subscribers_lost"] == 0
                          and result["really_gone_expired"] == len(gone_ids)
                          and result["sent"] == args.subscribers - len(gone_ids))
    print(f"subscribers lost = {result['subscribers_lost']}, really gone expired = {result['really_gone_expired']} "
          f"of {len(gone_ids)}, pushes delivered = {len(delivered)} of {args.subscribers - len(gone_ids)}")
    return result


def collect_pg_restart(args: argparse.Namespace, url: str, vapid_file: str) -> dict:
    """Events posted under load while PostgreSQL restarts: every accepted event is stored, once."""
    import threading

    import collect_load

    key = collect_load.prepare_database(url, vapid_file)
    tmp = Path(vapid_file).parent
    journal_dir = tmp / "journal"
    env = {**os.environ, "DATABASE_URL": url, "PUSHCART_SECRET_KEY": "bench", "VAPID_PRIVATE_KEY_FILE": vapid_file,
           "VAPID_SUBJECT": "mailto:bench@pushcart.test", "RATELIMIT_ENABLED": "0", "RUN_SCHEDULER": "0",
           "COLLECT_JOURNAL_DIR": str(journal_dir), "PYTHONPATH": str(ROOT)}
    port = collect_load.free_port()
    server = collect_load.start_gunicorn("wsgi:app", port, env, tmp / "gunicorn.log", 2, ["-k", "sync"])
    base = f"http://127.0.0.1:{port}"
    path = f"/v1/shops/{key}/events"
    result: dict = {}
    restarted = None
    try:
        collect_load.wait_ready(base + "/healthz")
        load = threading.Thread(target=lambda: result.update(
            collect_load.run_wrk(base, path, args.seconds, 4, 2)))
        load.start()
        time.sleep(args.seconds / 3)
        t = time.monotonic()
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", "restart"],
                       capture_output=True, timeout=90, check=True)
        restarted = {"at_second": round(args.seconds / 3, 1), "restart_seconds": round(time.monotonic() - t, 2)}
        print(f"PostgreSQL restarted ({restarted['restart_seconds']} s) while events were posted", flush=True)
        load.join(args.seconds + 60)
        ensure_pg_up()
        drain = collect_load.wait_stored(url, result["accepted"], timeout=args.timeout)
    finally:
        ensure_pg_up()
        collect_load.stop(server)
    stored = collect_load.count_events(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # every wrk event has an id: a duplicate would be a second row of one
        duplicates = conn.scalar(sa.text("SELECT count(*) - count(DISTINCT (shop_id, client_event_id)) FROM events"))
    engine.dispose()
    in_flight = 4 * 3  # requests wrk had in flight when it stopped, 3 events each
    # Journals live in a folder per database (with its DATABASE label): every file but the label.
    left = sorted(p.name for p in journal_dir.rglob("*") if p.is_file() and p.name != "DATABASE")
    log = (tmp / "gunicorn.log").read_text(errors="replace")
    summary_ = {
        "requests": result["requests"], "answered_202": result["ok"], "refused": result["refused"],
        "socket_errors": result["socket_errors"], "accepted_events": result["accepted"], "stored_events": stored,
        "drain_seconds_after_load": None if drain is None else round(drain, 2), "restart": restarted,
        "drain_failures_logged": log.count("journal drain failed"), "journal_files_left": left,
        "p99_ms": result["p99_ms"], "duplicates": int(duplicates or 0),
        "balanced": result["accepted"] <= stored <= result["accepted"] + in_flight and not left and not duplicates,
    }
    print(json.dumps(summary_, indent=2))
    return summary_


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", choices=["clock-jump", "pg-restart", "pg-drop", "collect-pg-restart", "push-404-storm"])
    parser.add_argument("--seconds", type=float, default=12.0, help="collect-pg-restart: seconds of load")
    parser.add_argument("--subscribers", type=int, default=200, help="clock-jump: subscribers (6 pushes each); push-404-storm: one push each")
    parser.add_argument("--pushes", type=int, default=3000, help="pg-restart: pushes in the backlog")
    parser.add_argument("--batch-size", type=int, default=100, help="pg-restart, push-404-storm: the worker's batch size")
    parser.add_argument("--lease", type=float, default=5.0, help="pg-restart: the worker's lease (seconds)")
    parser.add_argument("--delay", type=float, default=0.01, help="pg-restart: push service answer delay (s)")
    parser.add_argument("--timeout", type=float, default=120.0, help="pg-restart, push-404-storm: give up after this long")
    parser.add_argument("--no-restart", action="store_true", help="pg-restart: the same run without the restart")
    parser.add_argument("--drop-every", type=float, default=1.0,
                        help="pg-drop: seconds (0.5-1.5x, random) between ending all the worker's connections")
    parser.add_argument("--write-drops", type=int, default=25, help="pg-drop: outcome writes to end, at most")
    parser.add_argument("--seed", type=int, default=21, help="pg-drop: seed of the drop timing")
    parser.add_argument("--storm-seconds", type=float, default=6.0, help="push-404-storm: seconds of 404 to all")
    parser.add_argument("--gone-percent", type=int, default=3, help="push-404-storm: subscribers really gone (%%)")
    args = parser.parse_args()

    from server.delivery.push.vapid import init_keys

    tmp = Path(tempfile.mkdtemp(prefix="pushcart-fault-"))
    vapid_file = str(tmp / "vapid.pem")
    init_keys(vapid_file)
    schema = f"fault_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = with_schema(PG_URL, schema)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    Base.metadata.create_all(engine)
    engine.dispose()
    try:
        run = {"clock-jump": clock_jump, "pg-restart": pg_restart, "pg-drop": pg_drop,
               "collect-pg-restart": collect_pg_restart, "push-404-storm": push_404_storm}[args.run]
        result = run(args, url, vapid_file)
    finally:
        ensure_pg_up()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"fault_{args.run}.json").write_text(json.dumps(result, indent=2, default=str))
    ok = result["balanced"] and (result["duplicates"] == 0 or args.run == "pg-restart"
                                 and result["duplicates_within_one_batch"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
