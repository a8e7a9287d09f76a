"""The events journal (``server.collect.journal``) on SQLite and PostgreSQL: answered from local disk,
stored exactly once, nothing lost when a process dies or the database is away.

Real files, real locks, real processes: a journal left by a process killed with SIGKILL is
adopted by another; one whose process lives is not.
"""
from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from server import create_app
from server.collect.journal import drainer as drainer_module, file as file_module
from server.core.db import get_db
from server.collect.journal import database_identity, database_owner, event_journal, journal_settings
from server.collect.journal.drainer import Drainer
from server.collect.journal.file import Journal
from server.core.metrics import get_metrics
from server.core.models import Base, Checkout, Event, JournalMark, Visitor
from server.collect.events import EventBatch, StoredBatch, store_batches
from tests.factories import make_shop

ORIGIN = "https://shop.example"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def journal_config(app_config, tmp_path):
    return {**app_config, "COLLECT_JOURNAL_DIR": str(tmp_path / "journal")}


@pytest.fixture
def japp(journal_config, make_app):
    return make_app(journal_config, draining=False)  # these tests watch the journal themselves


@pytest.fixture
def db(japp):
    session = get_db(japp).sessionmaker()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def shop(db, clock):
    new = make_shop(db, clock.now(), origins=[ORIGIN])
    db.commit()
    return new


def count(session, model, *where):
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def body(visitor_id, *events):
    return {"visitor_id": visitor_id, "events": list(events)}


def batch(visitor_id, *events):
    return EventBatch.model_validate(body(visitor_id, *events))


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*")) if directory.exists() else []


def idle_drainer(app, directory: Path) -> Drainer:
    """A drainer whose thread is not started: the test drives it step by step."""
    return Drainer(app, Journal.create(directory))


def test_events_are_answered_from_the_journal_and_stored_once_after_the_drain(japp, db, shop, tmp_path, clock):
    client = japp.test_client()
    assert client.get("/healthz").get_json()["journal"] == {  # nothing journaled yet in this process
        "pending": 0, "oldest_age_seconds": None, "rejected": 0, "last_error": None}
    url = f"/v1/shops/{shop.shop.public_key}/events"
    first = client.post(url, json=body("visitor_aaaa", {"type": "page_view", "id": "a1", "url": f"{ORIGIN}/"},
                                       {"type": "product_view", "id": "a2"}), headers={"Origin": ORIGIN})
    assert first.status_code == 202
    assert first.get_json() == {"accepted": 2}  # no "stored": that is known only after the drain
    assert first.headers["Access-Control-Allow-Origin"] == ORIGIN
    # A retried beacon (a1 again), an event without an id, and a leave.
    again = body("visitor_aaaa", {"type": "page_view", "id": "a1"}, {"type": "identify", "email": "Ann@Example.COM"},
                 {"type": "leave", "id": "a3"})
    assert client.post(url, json=again).get_json() == {"accepted": 3}
    assert client.post(url, json=body("visitor_bbbb", {"type": "page_view", "id": "b1"})).status_code == 202

    assert event_journal(japp).drainer.flush(10)
    assert count(db, Event) == 5  # a1, a2, identify, a3, b1
    assert count(db, Visitor) == 2
    ann = db.scalars(sa.select(Visitor).where(Visitor.visitor_key == "visitor_aaaa")).one()
    assert ann.email == "ann@example.com" and ann.left_at == clock.now() and ann.last_event_at == clock.now()
    mark = db.scalars(sa.select(JournalMark)).one()
    journal = event_journal(japp).drainer.journal
    # The mark holds the id of the journal's last record: the offset just past it in the file.
    assert mark.last_id == journal.path.stat().st_size and mark.name == journal.name
    assert event_journal(japp).status()["pending"] == 0


RICH = [
    {"type": "page_view", "id": "r1", "url": f"{ORIGIN}/p/1?utm_source=news", "referrer": "https://search.example/"},
    {"type": "product_view", "id": "r2", "url": f"{ORIGIN}/p/1",
     "product": {"id": "sku-1", "title": " Mug ", "price": "12.5", "currency": "EUR", "image": f"{ORIGIN}/m.png"}},
    {"type": "add_to_cart", "id": "r3", "cart": {"token": "t-1", "total": "25.00", "currency": "EUR", "item_count": 2,
                                                 "items": [{"id": "sku-1", "price": "12.50"}]}},
    {"type": "identify", "email": "Ann@Example.com", "first_name": "Ann", "unknown": "dropped"},
]


def test_journaled_events_are_stored_exactly_as_store_batches_stores_them(japp, db, shop):
    # The drain reads batches back from the file (no second validation): what it stores must be
    # what storing the validated batch's text, handed over directly, stores.
    with get_db(japp).sessionmaker() as session:
        other = make_shop(session, shop.shop.created_at, origins=[ORIGIN])
        session.commit()
    with japp.app_context(), get_db(japp).sessionmaker() as session:
        text = batch("visitor_rrrr", *RICH).model_dump_json(exclude_none=True)
        assert store_batches(session, [StoredBatch.from_json(other.shop.id, shop.shop.created_at,
                                                                     text)]) == [4]
        session.commit()
    assert japp.test_client().post(f"/v1/shops/{shop.shop.public_key}/events",
                                   json=body("visitor_rrrr", *RICH)).get_json() == {"accepted": 4}
    assert event_journal(japp).drainer.flush(10)

    def stored(shop_id):
        events = db.scalars(sa.select(Event).where(Event.shop_id == shop_id).order_by(Event.id)).all()
        visitor = db.scalars(sa.select(Visitor).where(Visitor.shop_id == shop_id)).one()
        return ([(e.type, e.client_event_id, e.url, e.referrer, e.product, e.cart) for e in events],
                (visitor.email, visitor.first_name, visitor.utm_source, visitor.landing_url, visitor.engaged_since))

    assert stored(shop.shop.id) == stored(other.shop.id)
    assert stored(shop.shop.id)[0][1][4] == {"id": "sku-1", "title": "Mug", "price": "12.50", "currency": "EUR",
                                             "image": f"{ORIGIN}/m.png"}


def test_the_preset_hooks_run_when_the_journal_is_drained(japp, db, shop):
    cart = {"token": "cart-77", "total": "59.90", "currency": "EUR", "item_count": 2,
            "checkout_url": f"{ORIGIN}/checkout/77"}
    response = japp.test_client().post(f"/v1/shops/{shop.shop.public_key}/events",
                                       json=body("visitor_cccc", {"type": "checkout_started", "id": "c1", "cart": cart}))
    assert response.status_code == 202
    assert event_journal(japp).drainer.flush(10)
    checkout = db.scalars(sa.select(Checkout)).one()
    assert (checkout.token, str(checkout.total), checkout.currency) == ("cart-77", "59.90", "EUR")


def test_stopping_drains_the_journal_and_removes_its_files_and_mark(japp, db, shop, journal_config):
    client = japp.test_client()
    for n in range(5):
        assert client.post(f"/v1/shops/{shop.shop.public_key}/events",
                           json=body("visitor_dddd", {"type": "page_view", "id": f"d{n}"})).status_code == 202
    directory = journal_settings(japp).directory  # this database's folder in COLLECT_JOURNAL_DIR
    assert directory.parent == Path(journal_config["COLLECT_JOURNAL_DIR"])
    assert len(files(directory)) >= 3  # the journal, its lock and the folder's DATABASE label
    event_journal(japp).close()
    assert count(db, Event) == 5
    assert files(directory) == ["DATABASE"]
    assert count(db, JournalMark) == 0


def test_a_group_committed_but_not_yet_trimmed_is_skipped_not_stored_twice(japp, db, shop, tmp_path, clock):
    # The crash window: the database has the group (and the mark), the journal still has its rows.
    drainer = idle_drainer(japp, tmp_path / "j")
    journal = drainer.journal
    for key in ("visitor_eeee", "visitor_ffff"):
        # Events without ids: nothing but the mark keeps them from being stored again.
        journal.append(shop.shop.id, clock.now(), 2, batch(key, {"type": "page_view"}, {"type": "product_view"})
                       .model_dump_json())
    rows = journal.read()
    assert drainer._store_group(journal, rows) == 2
    assert count(db, Event) == 4 and journal.pending == 2
    assert drainer.drain(journal) == 0  # the rows are behind the mark: skipped
    assert count(db, Event) == 4 and journal.pending == 0
    drainer.stop()
    assert files(tmp_path / "j") == []


def test_row_ids_are_never_reused_after_the_journal_was_drained_empty(japp, db, shop, tmp_path, clock):
    # The mark skips ids it has passed: an id given again after the table emptied would be lost.
    drainer = idle_drainer(japp, tmp_path / "j")
    journal = drainer.journal
    for round_ in range(3):
        for n in range(2):
            journal.append(shop.shop.id, clock.now(), 1,
                           batch("visitor_llll", {"type": "page_view", "id": f"l{round_}{n}"}).model_dump_json())
        assert drainer.drain(journal) == 2
    assert count(db, Event) == 6
    drainer.stop()


CHILD = """
import os, signal, sys, time
from datetime import datetime, timezone
from pathlib import Path
from server.collect.journal.file import Journal
journal = Journal.create(Path(sys.argv[1]))
for n in range(int(sys.argv[3])):
    body = '{"visitor_id": "visitor_kill", "events": [{"type": "page_view", "id": "k%d"}]}' % n
    journal.append(int(sys.argv[2]), datetime.now(timezone.utc), 1, body)
print(journal.name, flush=True)
if sys.argv[4] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(60)
"""


def child_journal(directory: Path, shop_id: int, batches: int, fate: str) -> tuple[subprocess.Popen, str]:
    """A separate process that journals ``batches`` and then dies (SIGKILL) or lives on."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(directory), str(shop_id), str(batches), fate],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    name = child.stdout.readline().strip()
    child.stdout.close()
    assert name.startswith("events-"), name
    return child, name


def test_the_journal_of_a_killed_process_is_adopted_stored_and_removed(japp, db, shop, tmp_path):
    directory = tmp_path / "shared"
    child, name = child_journal(directory, shop.shop.id, 30, "die")
    assert child.wait(10) == -signal.SIGKILL
    assert f"{name}.log" in files(directory)
    drainer = idle_drainer(japp, directory)
    assert drainer.adopt_orphans() == 1
    assert count(db, Event, Event.client_event_id.like("k%")) == 30
    assert not [f for f in files(directory) if name in f]  # its files are gone (the drainer's own remain)
    assert count(db, JournalMark, JournalMark.name == name) == 0
    drainer.stop()


def test_the_journal_of_a_live_process_is_left_alone(japp, db, shop, tmp_path):
    directory = tmp_path / "shared"
    child, name = child_journal(directory, shop.shop.id, 3, "live")
    try:
        drainer = idle_drainer(japp, directory)
        assert drainer.adopt_orphans() == 0
        assert count(db, Event) == 0 and f"{name}.log" in files(directory)
    finally:
        child.kill()
        child.wait(10)
    assert drainer.adopt_orphans() == 1  # its process is gone now
    assert count(db, Event) == 3
    drainer.stop()


def unreachable(url: str, tmp_path: Path) -> str:
    """The same kind of database, unreachable: a SQLite file in a missing folder, a closed port."""
    if url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/missing/dir/x.db"
    return sa.make_url(url).set(port=1).render_as_string(hide_password=False)


def test_batches_accepted_while_the_database_is_away_are_stored_by_the_next_process(
        journal_config, make_app, japp, db, shop, tmp_path, clock):
    down = make_app(journal_config, draining=False)
    # This process cannot reach the database (the same one: its journal is that database's).
    get_db(down).sessionmaker.configure(bind=sa.create_engine(unreachable(journal_config["DATABASE_URL"], tmp_path)))
    journal = event_journal(down)
    for n in range(4):
        journal.append(shop.shop.id, clock.now(), batch("visitor_gggg", {"type": "page_view", "id": f"g{n}"}))
    deadline = time.monotonic() + 10
    while journal.status()["last_error"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    status = journal.status()
    assert status["last_error"] == "OperationalError" and status["pending"] == 4
    health = down.test_client().get("/healthz").get_json()
    assert health["journal"]["pending"] == 4
    journal.close()  # the process stops with its batches still waiting: they stay on disk
    directory = journal_settings(japp).directory
    assert len(files(directory)) == 3  # its journal, its lock, the DATABASE label

    drainer = idle_drainer(japp, directory)
    assert drainer.adopt_orphans() == 1
    assert count(db, Event, Event.client_event_id.like("g%")) == 4
    drainer.stop()
    assert files(directory) == ["DATABASE"]


def test_a_batch_the_database_refuses_is_set_aside_and_the_others_stored(japp, db, shop, tmp_path, clock):
    drainer = idle_drainer(japp, tmp_path / "j")
    journal = drainer.journal
    good = batch("visitor_hhhh", {"type": "page_view", "id": "h1"}).model_dump_json()
    journal.append(shop.shop.id, clock.now(), 1, good)
    journal.append(shop.shop.id + 999, clock.now(), 1, good.replace("h1", "h2"))  # a shop that is not there
    journal.append(shop.shop.id, clock.now(), 1, '{"visitor_id": "visitor_hhhh", "ev')  # a damaged row
    journal.append(shop.shop.id, clock.now(), 1, good.replace("h1", "h3"))
    with open(journal.path, "r+b") as file:  # a byte of that record damaged on disk: its checksum fails
        at = file.read().rindex(b'"h3"')
        file.seek(at + 1)
        file.write(b"x")
    journal.append(shop.shop.id, clock.now(), 1, good.replace("h1", "h5"))
    drainer.drain(journal)
    assert sorted(db.scalars(sa.select(Event.client_event_id))) == ["h1", "h5"]
    assert journal.pending == 0 and journal.rejected() == 3
    assert get_metrics(japp).registry.get_sample_value("pushcart_journal_rejected_total") == 3
    drainer.stop()
    assert files(tmp_path / "j") == [f"rejected-{journal.name}.jsonl"]
    kept = [json.loads(line) for line in (tmp_path / "j" / f"rejected-{journal.name}.jsonl").read_text().splitlines()]
    assert [k["shop_id"] for k in kept] == [shop.shop.id + 999, shop.shop.id, 0]
    assert ["IntegrityError" in k["reason"] for k in kept] == [True, False, False]
    assert "checksum" in kept[2]["reason"] and '"x3"' in kept[2]["body"]


def test_rejected_batches_stay_rejected_when_the_journal_is_adopted(japp, db, shop, tmp_path, clock):
    # The process dies after refusing a batch and before the next group moved the mark past it.
    directory = tmp_path / "j"
    first = idle_drainer(japp, directory)
    journal = first.journal
    journal.append(shop.shop.id + 999, clock.now(), 1, batch("visitor_rrrr", {"type": "page_view", "id": "r1"})
                   .model_dump_json())
    journal.append(shop.shop.id, clock.now(), 1, batch("visitor_rrrr", {"type": "page_view", "id": "r2"})
                   .model_dump_json())
    assert first.drain(journal) == 1
    journal.append(shop.shop.id, clock.now(), 1, batch("visitor_rrrr", {"type": "page_view", "id": "r3"})
                   .model_dump_json())
    journal.close()  # (as a SIGKILL would leave it)
    second = idle_drainer(japp, directory)
    assert second.adopt_orphans() == 1
    assert sorted(db.scalars(sa.select(Event.client_event_id))) == ["r2", "r3"]
    assert files(directory) == sorted([f"rejected-{journal.name}.jsonl", f"{second.journal.name}.lock",
                                       f"{second.journal.name}.log"])
    assert len((directory / f"rejected-{journal.name}.jsonl").read_text().splitlines()) == 1
    second.stop()


def test_a_record_cut_short_by_a_crash_is_dropped_and_the_rest_stored(japp, db, shop, tmp_path, clock):
    directory = tmp_path / "j"
    first = idle_drainer(japp, directory)
    journal = first.journal
    for n in range(3):
        journal.append(shop.shop.id, clock.now(), 1, batch("visitor_tttt", {"type": "page_view", "id": f"t{n}"})
                       .model_dump_json())
    journal.close()
    with open(journal.path, "ab") as file:  # the process died in the middle of a write: never answered
        file.write(b"0badc0de 1 2026-01-05T12:00:00+00:00 1 {\"visitor_id\": \"visi")
    second = idle_drainer(japp, directory)
    assert second.adopt_orphans() == 1
    assert sorted(db.scalars(sa.select(Event.client_event_id))) == ["t0", "t1", "t2"]
    assert get_metrics(japp).registry.get_sample_value("pushcart_journal_rejected_total") == 0
    second.stop()
    assert files(directory) == []


def test_a_journal_drained_empty_starts_a_new_file_and_its_ids_go_on(japp, db, shop, tmp_path, clock, monkeypatch):
    monkeypatch.setattr(file_module, "ROTATE_AT", 1)  # every drained-empty journal starts over
    drainer = idle_drainer(japp, tmp_path / "j")
    journal = drainer.journal
    last = 0
    for round_ in range(3):
        journal.append(shop.shop.id, clock.now(), 1,
                       batch("visitor_oooo", {"type": "page_view", "id": f"o{round_}"}).model_dump_json())
        rows = journal.read()
        assert len(rows) == 1 and rows[0].id > last  # never an id the mark has passed
        last = rows[0].id
        assert drainer.drain(journal) == 1
        assert journal.path.stat().st_size < 64  # the header alone: the file started over
    assert sorted(db.scalars(sa.select(Event.client_event_id))) == ["o0", "o1", "o2"]
    drainer.stop()
    assert files(tmp_path / "j") == []


def test_the_journal_file_stays_bounded_under_steady_load(japp, db, shop, tmp_path, clock, monkeypatch):
    # Under steady load the journal is never drained empty; its file must not grow for ever.
    monkeypatch.setattr(file_module, "ROTATE_AT", 4096)
    drainer = idle_drainer(japp, tmp_path / "j")
    journal = drainer.journal
    appended, sizes, ids = 0, [], []

    def append() -> None:
        nonlocal appended
        journal.append(shop.shop.id, clock.now(), 1,
                       batch("visitor_ssss", {"type": "page_view", "id": f"s{appended}"}).model_dump_json())
        appended += 1

    for _ in range(3):
        append()  # a small backlog that is always there
    for _ in range(150):
        append()
        append()
        rows = journal.read(max_rows=2)
        ids += [row.id for row in rows]
        assert drainer._store(journal, rows) == 2
        assert journal.pending == 3
        sizes.append(journal.path.stat().st_size)
    assert appended * 80 > 4 * 4096  # without starting over, the file would be this large at least
    assert max(sizes) < 4096 + 4096 // 4 + 200  # it stays near ROTATE_AT
    assert ids == sorted(set(ids))  # ids only grow, none given twice
    assert drainer.drain(journal) == 3
    assert sorted(db.scalars(sa.select(Event.client_event_id))) == sorted(f"s{i}" for i in range(appended))
    drainer.stop()
    assert files(tmp_path / "j") == []


def test_a_journal_of_the_earlier_sqlite_format_is_left_whole_and_logged(japp, db, shop, tmp_path, caplog):
    directory = tmp_path / "j"
    directory.mkdir()
    (directory / "events-4567.lock").write_text("")
    (directory / "events-4567.sqlite").write_bytes(b"SQLite format 3\x00")
    drainer = idle_drainer(japp, directory)
    assert drainer.adopt_orphans() == 0
    assert drainer.adopt_orphans() == 0
    assert {"events-4567.lock", "events-4567.sqlite"} <= set(files(directory))
    assert "events-4567.log" not in files(directory)
    logged = [r for r in caplog.records if "earlier SQLite format" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelname == "ERROR"  # once, not every look
    drainer.stop()


def test_a_file_that_is_not_a_journal_is_kept_aside_not_drained(japp, db, shop, tmp_path):
    directory = tmp_path / "j"
    directory.mkdir()
    (directory / "events-0123.lock").write_text("")
    (directory / "events-0123.log").write_text("something else\n")
    drainer = idle_drainer(japp, directory)
    assert drainer.adopt_orphans() == 0
    assert "unreadable-events-0123.log" in files(directory) and "events-0123.lock" not in files(directory)
    drainer.stop()


def test_a_full_journal_answers_503_busy_and_keeps_nothing_more(journal_config, make_app, monkeypatch, clock):
    monkeypatch.setattr(drainer_module, "LINGER_ABOVE", 0.0)  # any arrival counts as load ...
    monkeypatch.setattr(drainer_module, "LINGER", 30.0)  # ... so the drainer waits: the first batch stays pending
    app = make_app({**journal_config, "COLLECT_JOURNAL_MAX_PENDING": 1}, draining=False)
    with get_db(app).sessionmaker() as session:
        new = make_shop(session, clock.now(), origins=[ORIGIN])
        session.commit()
    client = app.test_client()
    url = f"/v1/shops/{new.shop.public_key}/events"
    assert client.post(url, json=body("visitor_iiii", {"type": "page_view", "id": "i1"})).status_code == 202
    full = client.post(url, json=body("visitor_iiii", {"type": "page_view", "id": "i2"}), headers={"Origin": ORIGIN})
    assert full.status_code == 503
    assert full.get_json()["error"]["code"] == "busy"
    assert full.headers["Retry-After"] == "5"
    assert full.headers["Access-Control-Allow-Origin"] == ORIGIN  # the widget can read it
    assert client.get("/healthz").get_json()["journal"]["pending"] == 1
    event_journal(app).close()  # stops the lingering drainer, which stores what it holds
    with get_db(app).sessionmaker() as session:
        assert session.scalars(sa.select(Event.client_event_id)).all() == ["i1"]


@contextlib.contextmanager
def file_size_limit(limit: int):
    """The kernel's per-process file size limit (RLIMIT_FSIZE): a write that would grow a file past
    ``limit`` bytes fails with EFBIG, as on a full disk (the signal it also sends is ignored)."""
    previous_signal = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_signal)


def test_a_journal_its_disk_refuses_answers_503_busy_and_stays_whole(japp, db, shop, caplog):
    client = japp.test_client()
    url = f"/v1/shops/{shop.shop.public_key}/events"
    assert client.post(url, json=body("visitor_ssss", {"type": "page_view", "id": "s1"})).status_code == 202
    journal = event_journal(japp).drainer.journal
    with file_size_limit(journal.path.stat().st_size + 40):  # room for less than one more record
        refused = client.post(url, json=body("visitor_ssss", {"type": "page_view", "id": "s2"}))
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "busy"
    assert "cannot be written" in refused.get_json()["error"]["message"]
    assert refused.headers["Retry-After"] == "5"
    assert any("cannot be written" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    # Nothing half written is left for the next record to follow: the journal reads on as before.
    assert client.post(url, json=body("visitor_ssss", {"type": "page_view", "id": "s3"})).status_code == 202
    assert event_journal(japp).drainer.flush(10)
    assert sorted(db.scalars(sa.select(Event.client_event_id))) == ["s1", "s3"]
    assert get_metrics(japp).registry.get_sample_value("pushcart_journal_rejected_total") == 0


def test_a_quiet_journal_is_drained_at_once_without_lingering(japp, db, shop, monkeypatch):
    monkeypatch.setattr(drainer_module, "LINGER", 30.0)  # were it to linger, nothing would be stored below
    client = japp.test_client()
    assert client.post(f"/v1/shops/{shop.shop.public_key}/events",
                       json=body("visitor_qqqq", {"type": "page_view", "id": "q1"})).status_code == 202
    deadline = time.monotonic() + 10
    while count(db, Event) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert count(db, Event) == 1


def test_the_journal_is_the_one_write_path_on_both_databases(app_config, make_app):
    app = make_app(app_config)
    settings = journal_settings(app)
    assert settings.root == Path(app.instance_path) / "journal"
    assert settings.directory == settings.root / database_owner(app_config["DATABASE_URL"])
    assert (settings.directory / "DATABASE").read_text().strip() == database_identity(app_config["DATABASE_URL"])
    # Named without the password; the driver does not matter, the schema option does.
    assert database_identity("postgresql+psycopg://user:s3cret@db.example/shop") == "postgresql://user@db.example/shop"
    assert database_owner("postgresql+psycopg://u:a@h/shop") == database_owner("postgresql://u:b@h/shop")
    assert database_owner("postgresql://u@h/shop") != database_owner("postgresql://u@h/shop?options=-csearch_path%3Ds")
    assert settings.sync == "normal" and settings.max_pending == 200_000
    with pytest.raises(ValueError, match="COLLECT_JOURNAL_SYNC"):
        create_app({**app_config, "COLLECT_JOURNAL_SYNC": "never"})
    with pytest.raises(ValueError, match="COLLECT_JOURNAL_MAX_PENDING must be a whole number of at least 1"):
        create_app({**app_config, "COLLECT_JOURNAL_MAX_PENDING": 0})


def test_a_journal_folder_that_cannot_be_made_is_refused_at_start(journal_config, make_app, tmp_path):
    occupied = tmp_path / "a-file"
    occupied.write_text("not a folder")
    for directory in (occupied, occupied / "journal"):
        with pytest.raises(ValueError, match="COLLECT_JOURNAL_DIR .* (cannot be created|is not a folder)"):
            create_app({**journal_config, "COLLECT_JOURNAL_DIR": str(directory)})


@pytest.mark.parametrize("sync, syncs", [("full", 1), ("normal", 0)])
def test_full_sync_syncs_each_append_to_disk_before_the_answer(journal_config, make_app, clock, monkeypatch,
                                                                sync, syncs):
    app = make_app({**journal_config, "COLLECT_JOURNAL_SYNC": sync}, draining=False)
    with get_db(app).sessionmaker() as session:
        new = make_shop(session, clock.now(), origins=[ORIGIN])
        session.commit()
    event_journal(app).drainer  # the journal is made (and its header synced) before we count
    real, synced = os.fdatasync, []
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), real(fd)))
    response = app.test_client().post(f"/v1/shops/{new.shop.public_key}/events",
                                      json=body("visitor_jjjj", {"type": "page_view", "id": "j1"}))
    assert response.status_code == 202
    assert len(synced) == syncs
    monkeypatch.undo()
    assert event_journal(app).drainer.flush(10)
    with get_db(app).sessionmaker() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 1


# --- two instances (staging beside production) sharing one instance folder --------------------


def second_database(tmp_path: Path) -> str:
    """Another empty database with the model's tables (a SQLite file)."""
    url = f"sqlite:///{tmp_path / 'staging.db'}"
    engine = sa.create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


def dead_instance_journal(app, shop_id: int, batches: int) -> str:
    """A journal of ``app``'s database left by a process that died with ``batches`` undrained; its name."""
    journal = Journal.create(journal_settings(app).directory)
    for n in range(batches):
        journal.append(shop_id, datetime.now(timezone.utc), 1,
                       batch("visitor_dead", {"type": "page_view", "id": f"d{n}"}).model_dump_json())
    journal.close()  # its lock is free: as if its process were gone
    return journal.name


def test_two_instances_sharing_an_instance_folder_drain_only_their_own_journals(app_config, make_app, tmp_path, clock):
    production = make_app(app_config, draining=False)
    staging = make_app({**app_config, "DATABASE_URL": second_database(tmp_path)}, draining=False)
    assert production.instance_path == staging.instance_path
    sessions = {app: get_db(app).sessionmaker() for app in (production, staging)}
    shops = {app: make_shop(session, clock.now(), origins=[ORIGIN]) for app, session in sessions.items()}
    for session in sessions.values():
        session.commit()
    assert shops[production].shop.id == shops[staging].shop.id  # the same ids: a mix-up would be silent
    name = dead_instance_journal(staging, shops[staging].shop.id, 3)

    production_drainer = Drainer(production, Journal.create(journal_settings(production).directory))
    assert production_drainer.adopt_orphans() == 0
    assert count(sessions[production], Event) == 0
    staging_drainer = Drainer(staging, Journal.create(journal_settings(staging).directory))
    assert staging_drainer.adopt_orphans() == 1
    assert count(sessions[staging], Event, Event.client_event_id.like("d%")) == 3
    assert count(sessions[staging], JournalMark, JournalMark.name == name) == 0
    for drainer in (production_drainer, staging_drainer):
        drainer.stop()
    for session in sessions.values():
        session.close()


def test_each_instance_journals_its_events_into_its_own_database(app_config, make_app, tmp_path, clock):
    production = make_app(app_config)
    staging = make_app({**app_config, "DATABASE_URL": second_database(tmp_path)})
    assert journal_settings(production).directory != journal_settings(staging).directory
    for n, app in enumerate((production, staging)):
        with get_db(app).sessionmaker() as session:
            new = make_shop(session, clock.now(), origins=[ORIGIN])
            session.commit()
            response = app.test_client().post(f"/v1/shops/{new.shop.public_key}/events", headers={"Origin": ORIGIN},
                                              json=body(f"visitor_{n}{n}{n}{n}", {"type": "page_view", "id": f"e{n}"}))
            assert response.status_code == 202
            assert [e.client_event_id for e in session.scalars(sa.select(Event))] == [f"e{n}"]


def test_a_journal_naming_another_database_is_not_adopted_even_in_this_folder(app_config, make_app, tmp_path, clock):
    production = make_app(app_config, draining=False)
    staging = make_app({**app_config, "DATABASE_URL": second_database(tmp_path)}, draining=False)
    with get_db(staging).sessionmaker() as session:
        shop_id = make_shop(session, clock.now(), origins=[ORIGIN]).shop.id
        session.commit()
    staging_settings = journal_settings(staging)
    journal = Journal.create(staging_settings.directory, owner=staging_settings.owner)
    journal.append(shop_id, clock.now(), 1, batch("visitor_moved", {"type": "page_view", "id": "m1"}).model_dump_json())
    journal.close()
    # Moved (or copied) into production's folder by hand: its lock file still names staging's database.
    here = journal_settings(production).directory
    for suffix in (".log", ".lock"):
        os.rename(journal.path.with_suffix(suffix), here / journal.path.with_suffix(suffix).name)
    drainer = Drainer(production, Journal.create(here, owner=journal_settings(production).owner))
    assert drainer.adopt_orphans() == 0
    assert f"{journal.name}.log" in files(here)
    with get_db(production).sessionmaker() as session:
        assert count(session, Event) == 0
    drainer.stop()


def test_an_earlier_releases_journal_in_the_shared_folder_goes_to_the_database_with_its_mark(
        app_config, make_app, tmp_path, clock):
    production = make_app(app_config, draining=False)
    staging = make_app({**app_config, "DATABASE_URL": second_database(tmp_path)}, draining=False)
    shared = journal_settings(production).root
    assert shared == journal_settings(staging).root
    ids = {}
    for app in (production, staging):
        with get_db(app).sessionmaker() as session:
            ids[app] = make_shop(session, clock.now(), origins=[ORIGIN]).shop.id
            session.commit()
    # Left in the shared folder by the earlier release (no owner in the lock): production's had
    # been draining it (its mark is in production's database), the other one no database knows.
    journals = {}
    for label in ("marked", "unmarked"):
        journal = Journal.create(shared)
        journal.append(ids[production], clock.now(), 1,
                       batch(f"visitor_{label}", {"type": "page_view", "id": label}).model_dump_json())
        journal.close()
        journals[label] = journal.name
    with get_db(production).sessionmaker() as session:
        session.add(JournalMark(name=journals["marked"], last_id=0, updated_at=clock.now()))
        session.commit()
    staging_drainer = Drainer(staging, Journal.create(journal_settings(staging).directory),
                              owner=journal_settings(staging).owner, legacy=shared)
    assert staging_drainer.adopt_orphans() == 0
    production_drainer = Drainer(production, Journal.create(journal_settings(production).directory),
                                 owner=journal_settings(production).owner, legacy=shared)
    assert production_drainer.adopt_orphans() == 1
    with get_db(production).sessionmaker() as session:
        assert [e.client_event_id for e in session.scalars(sa.select(Event))] == ["marked"]
    with get_db(staging).sessionmaker() as session:
        assert count(session, Event) == 0
    assert f"{journals['unmarked']}.log" in files(shared) and f"{journals['marked']}.log" not in files(shared)
    for drainer in (staging_drainer, production_drainer):
        drainer.stop()
