"""``worker`` processes for real: SIGTERM, SIGKILL mid-batch, two workers sharing PostgreSQL, and
``worker --processes N`` (one command, N processes sharing the outbox) on both databases.

The workers are separate ``flask --app wsgi worker`` processes on the system clock, so the rows
here are due at the real time. The fake push service counts arrivals by ``push_id``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.core.clock import utcnow
from server.core.models import Push
from tests.factories import cli_env, make_shop, make_subscription, make_visitor
from tests.fakepush import FakePushService, Reply

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


@pytest.fixture
def fake() -> Iterator[FakePushService]:
    with FakePushService() as service:
        service.check_vapid = False  # checked in test_delivery; here the service must keep up with two workers
        yield service


def start_worker(app, tmp_path: Path, name: str, *options: str) -> subprocess.Popen:
    """A ``flask --app wsgi worker`` process on the test database; its output goes to a file."""
    env = cli_env(app)
    with open(tmp_path / f"{name}.log", "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", *options],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def plan_real_time(session, service: FakePushService, n: int, subscriptions: int = 20) -> list[int]:
    """``n`` pushes due now (wall clock) spread over ``subscriptions`` endpoints; returns their ids."""
    now = utcnow()
    shop = make_shop(session, now).shop
    subs = []
    for i in range(subscriptions):
        visitor = make_visitor(session, shop.id, now)
        subs.append(make_subscription(session, visitor, now, endpoint=service.endpoint(f"s{i}"),
                                      keys=service.keys()))
    session.commit()
    rows = [{"shop_id": shop.id, "visitor_id": subs[i % subscriptions].visitor_id,
             "subscription_id": subs[i % subscriptions].id, "kind": "shipped", "dedupe_key": f"w:{i}",
             "title": "Shipped", "body": f"Order {i}", "url": "https://shop.example/", "status": "pending",
             "due_at": now - timedelta(seconds=1), "attempts": 0, "step": 0, "ttl": 86400,
             "urgency": "normal", "created_at": now}
            for i in range(n)]
    session.execute(sa.insert(Push), rows)
    session.commit()
    return list(session.scalars(sa.select(Push.id).order_by(Push.id)))


def statuses(session) -> dict[str, int]:
    session.expire_all()
    return dict(session.execute(sa.select(Push.status, sa.func.count()).group_by(Push.status)).all())


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def test_sigterm_finishes_the_batch_in_flight_then_exits_0(app, session, fake, tmp_path):
    ids = plan_real_time(session, fake, 40)
    fake.default = Reply(delay=0.3)  # every send takes a while: SIGTERM lands mid-batch
    worker = start_worker(app, tmp_path, "w", "--interval", "0.2", "--batch-size", "20", "--concurrency", "20")
    try:
        wait_until(lambda: len(fake.requests) >= 5, 30, "the first sends")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    finally:
        stop(worker)
    counts = statuses(session)
    assert "sending" not in counts, counts  # the batch in flight was recorded before exit
    assert counts.get("sent", 0) == len(fake.push_id_counts()) >= 5
    assert counts.get("sent", 0) + counts.get("pending", 0) == len(ids)


def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_at_most_its_batch(app, session, fake, tmp_path):
    batch = 50
    ids = plan_real_time(session, fake, 400)
    fake.default = Reply(delay=0.02)
    options = ("--interval", "0.2", "--batch-size", str(batch), "--lease", "3", "--concurrency", "8",
               "--processes", "1")  # one process: the one killed holds the claim (children: below)
    first = start_worker(app, tmp_path, "first", *options)
    second = None
    try:
        wait_until(lambda: len(fake.requests) >= batch + batch // 2, 30, "the second batch to be in flight")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert "sending" in statuses(session)  # it died holding a claim
        second = start_worker(app, tmp_path, "second", *options)
        wait_until(lambda: statuses(session) == {"sent": len(ids)}, 60, "every push to be sent")
    finally:
        stop(first)
        if second is not None:
            assert stop(second) == 0
    arrived = fake.push_id_counts()
    assert set(arrived) == set(ids)  # every planned push arrived
    duplicates = sum(n - 1 for n in arrived.values())
    assert duplicates <= batch, duplicates


def test_two_workers_on_postgresql_send_each_push_once(app, session, fake, tmp_path):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("several workers need PostgreSQL (SKIP LOCKED); SQLite runs one")
    ids = plan_real_time(session, fake, 2000, subscriptions=50)
    options = ("--interval", "0.2", "--batch-size", "100")
    workers = [start_worker(app, tmp_path, f"w{i}", *options) for i in range(2)]
    try:
        wait_until(lambda: statuses(session) == {"sent": len(ids)}, 60, "every push to be sent")
    finally:
        codes = [stop(w) for w in workers]
    assert codes == [0, 0]
    arrived = fake.push_id_counts()
    assert len(fake.requests) == len(ids)
    assert set(arrived) == set(ids) and set(arrived.values()) == {1}


def children_of(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except FileNotFoundError:  # a thread of the parent ended between the listing and the read
            continue
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def children_of_or_none(pid: int) -> list[int]:
    try:
        return children_of(pid)
    except OSError:  # the parent is gone
        return []


def stop_all(process: subprocess.Popen, children: list[int]) -> None:
    """Clean-up after a test, whether it passed or not: the parent, then any child left."""
    stop(process)
    for pid in children:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def supervised(app, tmp_path: Path, processes: int, *options: str) -> Iterator[tuple[subprocess.Popen, list[int]]]:
    """``worker --processes N`` (log ``w.log``), once its N processes run: the parent and their
    pids. Afterwards, whether the test passed or not, the parent and any child left are stopped."""
    worker = start_worker(app, tmp_path, "w", "--processes", str(processes), "--interval", "0.2", *options)
    children: list[int] = []
    try:
        wait_until(lambda: len(children_of(worker.pid)) == processes, 30, f"{processes} worker processes")
        children[:] = children_of(worker.pid)
        yield worker, children
    finally:
        stop_all(worker, children + children_of_or_none(worker.pid))


def test_worker_processes_share_the_outbox_each_push_once(app, session, fake, tmp_path):
    """Three processes of one ``worker`` command, on SQLite and PostgreSQL alike."""
    ids = plan_real_time(session, fake, 1500, subscriptions=30)
    fake.default = Reply(delay=0.005)  # slow enough that every process gets batches
    with supervised(app, tmp_path, 3, "--batch-size", "50", "--concurrency", "8") as (worker, children):
        wait_until(lambda: statuses(session) == {"sent": len(ids)}, 90, "every push to be sent")
        assert children_of(worker.pid) == children  # none died and was replaced
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert not any(alive(pid) for pid in children)  # checked before the clean-up kills any
    arrived = fake.push_id_counts()
    assert len(fake.requests) == len(ids)
    assert set(arrived) == set(ids) and set(arrived.values()) == {1}
    log = (tmp_path / "w.log").read_text()
    assert log.count("worker started") == 3 and "Traceback" not in log, log[-3000:]


def test_sigterm_to_the_parent_stops_every_process_with_its_batch_recorded(app, session, fake, tmp_path):
    ids = plan_real_time(session, fake, 200)
    fake.default = Reply(delay=0.3)  # every send takes a while: SIGTERM lands mid-batch in both
    with supervised(app, tmp_path, 2, "--batch-size", "20", "--concurrency", "20") as (worker, children):
        wait_until(lambda: len(fake.requests) >= 30, 30, "both processes sending")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert not any(alive(pid) for pid in children)  # checked before the clean-up kills any
    counts = statuses(session)
    assert "sending" not in counts, counts  # each process recorded its batch in flight
    assert counts.get("sent", 0) == len(fake.push_id_counts()) == len(fake.requests) >= 30
    assert counts.get("sent", 0) + counts.get("pending", 0) == len(ids)
    assert (tmp_path / "w.log").read_text().count("worker stopped") == 3  # two children, then the parent


def test_a_killed_worker_process_is_replaced_and_loses_nothing(app, session, fake, tmp_path):
    batch = 50
    ids = plan_real_time(session, fake, 600)
    fake.default = Reply(delay=0.02)
    with supervised(app, tmp_path, 2, "--batch-size", str(batch), "--lease", "3",
                    "--concurrency", "8") as (worker, children):
        victim = children[0]
        wait_until(lambda: len(fake.requests) >= batch, 30, "a batch in flight")
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(children_of(worker.pid)) == 2 and victim not in children_of(worker.pid), 30,
                   "a new process in its place")
        wait_until(lambda: statuses(session) == {"sent": len(ids)}, 90, "every push to be sent")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    arrived = fake.push_id_counts()
    assert set(arrived) == set(ids)  # what the killed process held came back after its lease
    assert sum(n - 1 for n in arrived.values()) <= batch
    assert "ended (signal 9); starting another" in (tmp_path / "w.log").read_text()


def test_processes_stop_when_their_parent_is_killed(app, session, fake, tmp_path):
    ids = plan_real_time(session, fake, 200)
    fake.default = Reply(delay=0.2)
    with supervised(app, tmp_path, 2, "--batch-size", "20", "--concurrency", "20") as (worker, children):
        wait_until(lambda: len(fake.requests) >= 10, 30, "the first sends")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        wait_until(lambda: not any(alive(pid) for pid in children), 30, "the orphans to stop")
    counts = statuses(session)
    assert "sending" not in counts, counts  # told to stop (SIGTERM), each recorded its batch
    assert counts.get("sent", 0) == len(fake.push_id_counts()) < len(ids)
