"""The events journal: the collect API's batches on the web host's disk until the database has them.

An events request is the hottest call of the service: every page view of every shop. Writing
each batch to PostgreSQL before answering puts several round trips and a commit on every page
view. With the journal, the request validates its batch, appends it to a local SQLite file and
is answered; a thread of the same process drains the journal into the database in groups
(``store_batches``: a handful of statements and one commit for up to ``DRAIN_GROUP`` requests).

Files: one journal per process in ``COLLECT_JOURNAL_DIR``, ``events-<name>.sqlite`` (WAL mode)
beside ``events-<name>.lock``, which the process holds under an exclusive ``flock`` while it
lives.

Exactly once: every journal has a row in the database's ``journal_marks`` holding the id of the
last journal row stored. A drain locks the mark, stores the rows after it, moves the mark in the
same transaction, and only after the commit deletes the rows from the journal. A crash between
the commit and the delete leaves rows that the mark already covers: they are skipped, never
stored twice.

Nothing lost: a process that dies (a crash, ``kill -9``, a reboot) leaves its journal behind, and
the kernel releases its lock. Every drainer looks for such journals (at start, then every
``ADOPT_EVERY`` seconds), takes the lock, drains them and removes them. A database outage only
delays the drain: batches are still accepted, up to ``COLLECT_JOURNAL_MAX_PENDING`` per process,
beyond which the API answers 503 with ``Retry-After``.

Durability: with ``COLLECT_JOURNAL_SYNC=normal`` (the default) an answered batch survives the
process dying; a power cut may lose the batches of the last moments (SQLite's WAL with
``synchronous=NORMAL``). ``full`` syncs each append to disk first (measured here: 0.19 ms per
request instead of 0.014 ms).

A batch the database refuses for itself (not an outage: its shop was deleted meanwhile, say) is
moved to the journal's ``rejected`` table, logged and counted; it never holds up the batches
behind it. A journal drained empty is deleted, or kept as ``rejected-events-<name>.sqlite`` when
it holds such batches.
"""
from __future__ import annotations

import atexit
import fcntl
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import exc as sa_exc
from sqlalchemy import orm

from . import metrics
from .db import get_db, insert_ignoring_duplicates
from .models import JournalMark
from .services.tracking import EventBatch, EventsIn, JournaledBatch, store_batches

log = logging.getLogger(__name__)

EXTENSION = "pushcart.journal"
DRAIN_GROUP = 500  # requests per drain transaction
DRAIN_GROUP_EVENTS = 4000  # ... and at most this many events (a batch holds up to 50)
LINGER = 0.2  # seconds a woken drainer waits for more batches to join its group ...
LINGER_ABOVE = 20.0  # ... when batches arrive faster than this per second (below, it drains at once)
IDLE_WAIT = 1.0  # seconds between looks at an idle journal
ADOPT_EVERY = 10.0  # seconds between looks for journals left by dead processes
MAX_BACKOFF = 5.0  # seconds, the longest wait after a failed drain
STOP_TIMEOUT = 10.0  # seconds a stopping process spends draining what is left
# What a batch can do wrong by itself: the database refuses its data (its shop was deleted
# meanwhile, a value out of range) or its row cannot be read back (a damaged file, a journal
# written by another version). Anything else (an outage, a missing migration) keeps every row
# in the journal and is retried.
REFUSALS = (sa_exc.IntegrityError, sa_exc.DataError, ValueError, TypeError, KeyError)
SYNC_MODES = ("normal", "full")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the mark in the database skips ids it has passed
    shop_id INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    events INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    shop_id INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    rejected_at TEXT NOT NULL
);
"""


class JournalFull(Exception):
    """This process's journal holds ``COLLECT_JOURNAL_MAX_PENDING`` batches not yet drained."""


@dataclass(frozen=True, slots=True)
class Row:
    """One journaled request, as stored (read into an ``EventsIn`` only when it is drained, so a
    damaged row is refused by itself instead of stopping the read)."""

    id: int
    shop_id: int
    received_at: str
    body: str

    def item(self) -> EventsIn:
        """The request as ``store_batches`` takes it (the batch was validated when it arrived)."""
        return EventsIn(self.shop_id, JournaledBatch.from_json(self.body), datetime.fromisoformat(self.received_at))


class Journal:
    """One journal file: appended to by request threads, read and trimmed by one drainer.

    Holds the journal's lock from ``open``/``adopt`` until ``close``/``remove``.
    """

    def __init__(self, path: Path, lock_fd: int, sync: str) -> None:
        self.path = path
        self.name = path.stem  # "events-<hex>": the key of its mark in the database
        self._lock_fd = lock_fd
        self._writer = self._connect(sync)
        self._reader = self._connect(sync)
        self._write_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.pending = self._reader.execute("SELECT count(*) FROM batches").fetchone()[0]
        self.appended = 0  # batches appended by this process (never goes down)

    def _connect(self, sync: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        # Each append commits, and a commit writes whole pages to the WAL: 1 KiB pages write a
        # quarter of the default's bytes for a batch of a few hundred (measured: 11.6 instead
        # of 13-15 us per append). Only takes on a new file.
        conn.execute("PRAGMA page_size=1024")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        conn.executescript(_SCHEMA)
        return conn

    @classmethod
    def create(cls, directory: Path, sync: str = "normal") -> Journal:
        """A new, empty journal of this process in ``directory``, locked.

        The lock file is locked under a temporary name and then renamed, so no other process
        ever sees this journal unlocked and mistakes it for a dead one's.
        """
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # the batches hold personal data
        name = f"events-{uuid.uuid4().hex}"
        temporary = directory / f".{name}.lock"
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        journal = cls(directory / f"{name}.sqlite", fd, sync)
        os.rename(temporary, directory / f"{name}.lock")
        return journal

    @classmethod
    def adopt(cls, lock_path: Path, sync: str = "normal") -> Journal | None:
        """The journal behind ``lock_path`` if its process is gone (its lock is free), else None."""
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except FileNotFoundError:
            return None  # removed meanwhile by whoever drained it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None  # its process is alive
        if not lock_path.exists():  # drained and removed between our open and our lock
            os.close(fd)
            return None
        return cls(lock_path.with_suffix(".sqlite"), fd, sync)

    def append(self, shop_id: int, received_at: datetime, events: int, body: str) -> None:
        """Keep one request's batch (committed when this returns)."""
        with self._write_lock:
            self._writer.execute("INSERT INTO batches (shop_id, received_at, events, body) VALUES (?, ?, ?, ?)",
                                 (shop_id, received_at.isoformat(), events, body))
        with self._count_lock:
            self.pending += 1
            self.appended += 1

    def read(self, max_rows: int = DRAIN_GROUP, max_events: int = DRAIN_GROUP_EVENTS) -> list[Row]:
        """The oldest rows, up to ``max_rows`` requests or ``max_events`` events (at least one row)."""
        rows: list[Row] = []
        events = 0
        for row_id, shop_id, received_at, count, body in self._reader.execute(
                "SELECT id, shop_id, received_at, events, body FROM batches ORDER BY id LIMIT ?", (max_rows,)):
            if rows and events + count > max_events:
                break
            events += count
            rows.append(Row(row_id, shop_id, received_at, body))
        return rows

    def delete_through(self, row_id: int) -> None:
        """Forget the rows up to ``row_id``: the database has them."""
        deleted = self._reader.execute("DELETE FROM batches WHERE id <= ?", (row_id,)).rowcount
        with self._count_lock:
            self.pending -= deleted

    def reject(self, row: Row, reason: str, now: datetime) -> None:
        """Move a row the database refused to the ``rejected`` table (one local transaction)."""
        with self._reader:
            self._reader.execute("BEGIN")
            self._reader.execute(
                "INSERT INTO rejected (shop_id, received_at, body, reason, rejected_at) VALUES (?, ?, ?, ?, ?)",
                (row.shop_id, row.received_at, row.body, reason[:500], now.isoformat()))
            deleted = self._reader.execute("DELETE FROM batches WHERE id = ?", (row.id,)).rowcount
        with self._count_lock:
            self.pending -= deleted

    def oldest(self) -> datetime | None:
        """When the oldest batch not yet drained arrived."""
        found = self._reader.execute("SELECT received_at FROM batches ORDER BY id LIMIT 1").fetchone()
        try:
            return datetime.fromisoformat(found[0]) if found else None
        except ValueError:
            return None  # a damaged row: the drain sets it aside

    def rejected(self) -> int:
        return self._reader.execute("SELECT count(*) FROM rejected").fetchone()[0]

    def close(self) -> None:
        """Close the files and release the lock (the journal stays, for a later drainer)."""
        self._writer.close()
        self._reader.close()
        os.close(self._lock_fd)

    def remove(self) -> None:
        """Delete the journal's files, then release the lock. Only for a journal drained empty
        with nothing rejected: the lock file goes first, so nobody adopts what is being deleted."""
        self.path.with_suffix(".lock").unlink(missing_ok=True)
        self._writer.close()
        self._reader.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        os.close(self._lock_fd)

    def set_aside(self) -> Path:
        """Keep a journal drained empty that holds rejected batches, for an operator to read, as
        ``rejected-<name>.sqlite`` (no drainer looks at it again); return its new path."""
        self.path.with_suffix(".lock").unlink(missing_ok=True)
        self._writer.close()
        self._reader.close()  # the last connection to close folds the WAL into the file
        kept = self.path.with_name(f"rejected-{self.path.name}")
        os.rename(self.path, kept)
        os.close(self._lock_fd)
        return kept


def _lock_mark(session: orm.Session, name: str, now: datetime) -> JournalMark:
    """The journal's mark row, locked for this transaction (created at 0 on first use)."""
    mark = session.get(JournalMark, name, with_for_update=True)
    if mark is None:
        session.execute(insert_ignoring_duplicates(session, JournalMark.__table__, ["name"])
                        .values(name=name, last_id=0, updated_at=now))
        mark = session.get(JournalMark, name, with_for_update=True, populate_existing=True)
        assert mark is not None
    return mark


class Drainer:
    """Moves journaled batches into the database, on a daemon thread of this process."""

    def __init__(self, app: Flask, journal: Journal, sync: str = "normal",
                 now: Callable[[], datetime] | None = None) -> None:
        self.app = app
        self.journal = journal
        self.directory = journal.path.parent
        self.sync = sync
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.sessionmaker = get_db(app).sessionmaker
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None

    # --- the request side

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pushcart-journal", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until this process's journal is drained; True if it was within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self.journal.pending or self._busy:
                self._wake.set()
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the thread, drain what is left if the database answers, then remove the journal
        when it is empty (or leave it, locked no more, for another process to adopt)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.drain(self.journal, deadline=time.monotonic() + timeout)
        except Exception as exc:  # noqa: BLE001 (an outage: the journal stays for later)
            log.warning("journal %s left with %d batch(es) for another process: %s",
                        self.journal.name, self.journal.pending, type(exc).__name__)
        self._retire(self.journal)

    # --- the drain

    def drain(self, journal: Journal, deadline: float | None = None) -> int:
        """Store every batch of ``journal`` (or until ``deadline``); return requests stored.

        Raises on an outage (or any error that is not one batch's own); the rows not yet stored
        stay in the journal.
        """
        stored = 0
        while deadline is None or time.monotonic() < deadline:
            rows = journal.read()
            if not rows:
                break
            stored += self._store(journal, rows)
        return stored

    def _store(self, journal: Journal, rows: Sequence[Row]) -> int:
        """Store ``rows`` in one transaction with the journal's mark; split them on a refusal."""
        try:
            stored = self._store_group(journal, rows)
        except REFUSALS as exc:
            if len(rows) > 1:
                log.warning("a journal group of %d failed (%s); storing its batches one by one",
                            len(rows), type(exc).__name__)
                return sum(self._store(journal, [row]) for row in rows)
            log.error("journal batch %s of shop %s refused: %s", rows[0].id, rows[0].shop_id, type(exc).__name__)
            journal.reject(rows[0], f"{type(exc).__name__}: {exc}", self.now())
            metrics.inc("journal_rejected", app=self.app)
            return 0
        journal.delete_through(rows[-1].id)
        return stored

    def _store_group(self, journal: Journal, rows: Sequence[Row]) -> int:
        # The preset hooks read the app's configuration (templates, public URL): an app context.
        with self.app.app_context(), self.sessionmaker() as session:
            mark = _lock_mark(session, journal.name, self.now())
            fresh = [row for row in rows if row.id > mark.last_id]
            if fresh:
                store_batches(session, [row.item() for row in fresh])
            mark.last_id = max(mark.last_id, rows[-1].id)
            mark.updated_at = self.now()
            session.commit()
        return len(fresh)

    def _retire(self, journal: Journal) -> None:
        """Remove a journal drained empty (and its mark), or set it aside when it holds rejected
        batches; close one that is not empty, for a later drainer."""
        if journal.pending:
            journal.close()
            return
        try:
            with self.sessionmaker() as session:
                session.execute(sa.delete(JournalMark).where(JournalMark.name == journal.name))
                session.commit()
        except Exception as exc:  # noqa: BLE001 (a stale mark row is harmless: nothing is left to skip)
            log.warning("could not delete the mark of journal %s: %s", journal.name, type(exc).__name__)
        if journal.rejected():
            kept = journal.set_aside()
            log.warning("journal %s holds batches the database refused: kept as %s", journal.name, kept.name)
        else:
            journal.remove()

    def adopt_orphans(self) -> int:
        """Drain and remove the journals of processes that are gone; return how many."""
        adopted = 0
        for lock_path in sorted(self.directory.glob("events-*.lock")):
            if lock_path.stem == self.journal.name:
                continue
            orphan = Journal.adopt(lock_path, self.sync)
            if orphan is None:
                continue
            try:
                stored = self.drain(orphan)
            except BaseException:
                orphan.close()
                raise
            log.info("journal %s of a process that is gone: %d batch(es) stored", orphan.name, stored)
            self._retire(orphan)
            adopted += 1
        return adopted

    def _run(self) -> None:
        """Store one group per turn: everything waiting, up to ``DRAIN_GROUP`` requests.

        Under load (more than ``LINGER_ABOVE`` batches a second), a group smaller than that first
        waits ``LINGER`` for more to arrive, so the groups grow with the load (a group's
        statements cost about the same for 1 request or 400). A quiet journal is drained at
        once, so its events are in the database within milliseconds.
        """
        backoff = 0.0
        next_adopt = 0.0
        seen, seen_at = self.journal.appended, time.monotonic()
        while not self._stop.is_set():
            if not self.journal.pending:
                self._wake.wait(IDLE_WAIT)
                self._wake.clear()
            if self._stop.is_set():
                break
            now, appended = time.monotonic(), self.journal.appended
            busy = appended - seen > LINGER_ABOVE * max(now - seen_at, 0.05)
            seen, seen_at = appended, now
            if busy and 0 < self.journal.pending < DRAIN_GROUP:
                self._stop.wait(LINGER)
            with self._idle:
                self._busy = True
            try:
                if time.monotonic() >= next_adopt:
                    next_adopt = time.monotonic() + ADOPT_EVERY
                    self.adopt_orphans()
                rows = self.journal.read()
                if rows:
                    self._store(self.journal, rows)
                backoff, self.last_error = 0.0, None
            except Exception as exc:  # noqa: BLE001 (an outage or a bug: keep the rows, try again)
                backoff = min(MAX_BACKOFF, max(0.25, backoff * 2))
                self.last_error = type(exc).__name__
                log.warning("journal drain failed (%s); %d batch(es) wait, next try in %.2f s",
                            type(exc).__name__, self.journal.pending, backoff,
                            exc_info=not isinstance(exc, sa_exc.OperationalError))
                self._stop.wait(backoff)
            finally:
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()


@dataclass(frozen=True)
class JournalSettings:
    directory: Path
    sync: str
    max_pending: int


def journal_settings(app: Flask) -> JournalSettings | None:
    """Where and how events are journaled, or None when they are written before the answer."""
    mode = app.config["COLLECT_JOURNAL"]
    if mode == "off" or (mode == "auto" and get_db(app).dialect != "postgresql"):
        return None
    directory = app.config["COLLECT_JOURNAL_DIR"] or os.path.join(app.instance_path, "journal")
    return JournalSettings(Path(directory), app.config["COLLECT_JOURNAL_SYNC"],
                           app.config["COLLECT_JOURNAL_MAX_PENDING"])


def check_journal(app: Flask) -> None:
    """At start: when events are journaled, ``COLLECT_JOURNAL_DIR`` must be (or become) a
    writable folder; raises ValueError otherwise, instead of failing every events request."""
    settings = journal_settings(app)
    if settings is None:
        return
    directory = settings.directory
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # the batches hold personal data
    except OSError as exc:
        raise ValueError(f"COLLECT_JOURNAL_DIR {directory} cannot be created: {exc.strerror}") from None
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"COLLECT_JOURNAL_DIR {directory} is not a folder this process can write to")


_pid = os.getpid()  # this process's id, kept current across forks (no system call per request)


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


class EventJournal:
    """The app's journal in this process: created with its drainer on first use, after a fork too."""

    def __init__(self, app: Flask, settings: JournalSettings) -> None:
        self.app = app
        self.settings = settings
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._drainer: Drainer | None = None

    @property
    def drainer(self) -> Drainer:
        if self._pid != _pid:
            with self._lock:
                if self._pid != _pid:
                    journal = Journal.create(self.settings.directory, self.settings.sync)
                    from . import get_clock

                    drainer = Drainer(self.app, journal, self.settings.sync, now=get_clock(self.app).now)
                    drainer.start()
                    atexit.register(drainer.stop)
                    self._drainer, self._pid = drainer, _pid
        assert self._drainer is not None
        return self._drainer

    def started(self) -> Drainer | None:
        """This process's drainer if it has started (no journal is created by asking)."""
        return self._drainer if self._pid == _pid else None

    def append(self, shop_id: int, received_at: datetime, batch: EventBatch) -> None:
        """Journal one request's batch, or raise ``JournalFull``."""
        drainer = self.drainer
        if drainer.journal.pending >= self.settings.max_pending:
            drainer.wake()
            raise JournalFull(f"{drainer.journal.pending} batches wait for the database")
        drainer.journal.append(shop_id, received_at, len(batch.events), batch.model_dump_json(exclude_none=True))
        drainer.wake()

    def close(self) -> None:
        """Stop this process's drainer (draining what it can) and remove its journal if empty."""
        drainer = self.started()
        if drainer is not None:
            drainer.stop()
            atexit.unregister(drainer.stop)

    def status(self) -> dict[str, Any]:
        """For ``/healthz``: this process's batches waiting, their age, those refused, and the
        drain's last error (all empty before this process journaled anything)."""
        drainer = self.started()
        if drainer is None:
            return {"pending": 0, "oldest_age_seconds": None, "rejected": 0, "last_error": None}
        oldest = drainer.journal.oldest()
        age = (drainer.now() - oldest).total_seconds() if oldest else None
        return {"pending": drainer.journal.pending, "oldest_age_seconds": round(age, 3) if age is not None else None,
                "rejected": drainer.journal.rejected(), "last_error": drainer.last_error}


def event_journal(app: Flask) -> EventJournal | None:
    """The app's ``EventJournal``, or None when events are written before the answer."""
    app = getattr(app, "_get_current_object", lambda: app)()  # the app itself, not current_app
    if EXTENSION not in app.extensions:
        settings = journal_settings(app)
        app.extensions.setdefault(EXTENSION, EventJournal(app, settings) if settings else None)
    return app.extensions[EXTENSION]
