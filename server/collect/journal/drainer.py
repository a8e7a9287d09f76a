"""The events journal's drainer: a thread of the web process that stores journaled batches.

Exactly once: every journal has a row in the database's ``journal_marks`` holding the id of the
last record stored. A drain locks the mark, stores the records after it and moves the mark in
the same transaction; only then does it pass them in the file. A crash in between leaves records
that the mark already covers: they are skipped, never stored twice.

Nothing lost: the journal of a process that died (its lock is free) is adopted by any drainer of
the same database (its folder, and the owner its lock file names; at start, then every
``ADOPT_EVERY`` seconds), drained and removed. A journal another database's instance left in the
same instance folder is never adopted: its batches would land in the wrong database. Journals of
an earlier release (in the shared folder itself, their lock naming no owner) are adopted only
when this database holds their mark, i.e. it was draining them. A database
outage only delays the drain, which retries with backoff. A batch the database refuses for
itself (its shop deleted meanwhile, a damaged record) is set aside in the journal's rejected
file, logged and counted, and never holds up the batches behind it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import exc as sa_exc
from sqlalchemy import orm

from server.collect.events import store_batches
from server.collect.journal.file import DRAIN_GROUP, Journal, Row
from server.core import metrics
from server.core.db import get_db, insert_ignoring_duplicates
from server.core.models import JournalMark

log = logging.getLogger(__name__)

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
                 now: Callable[[], datetime] | None = None, owner: str = "", legacy: Path | None = None) -> None:
        self.app = app
        self.journal = journal
        self.directory = journal.path.parent
        self.owner = owner or journal.owner  # the database whose journals this drainer adopts
        self.legacy = legacy if legacy is not None and legacy != self.directory else None
        self._unclaimed: set[str] = set()  # earlier release's journals without a mark here, logged once
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
        journal.pass_through(rows[-1].id)
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

    def _is_ours(self, name: str) -> bool:
        """Whether this database holds the mark of journal ``name`` (so it was draining it)."""
        with self.sessionmaker() as session:
            return session.get(JournalMark, name) is not None

    def _orphans(self) -> list[Path]:
        """Lock files of journals this drainer may adopt: its folder's, and the earlier release's
        in the shared folder above it that this database has a mark for."""
        found = sorted(self.directory.glob("events-*.lock"))
        if self.legacy is not None:
            for lock_path in sorted(self.legacy.glob("events-*.lock")):
                if self._is_ours(lock_path.stem):
                    found.append(lock_path)
                elif lock_path.stem not in self._unclaimed:
                    self._unclaimed.add(lock_path.stem)
                    log.warning("journal %s (of an earlier release, in %s) has no mark in this database: left for "
                                "the instance it belongs to (see docs/operations.md)", lock_path.stem, self.legacy)
        return found

    def adopt_orphans(self) -> int:
        """Drain and remove the journals of this database's processes that are gone; return how many."""
        adopted = 0
        for lock_path in self._orphans():
            if lock_path.stem == self.journal.name:
                continue
            orphan = Journal.adopt(lock_path, self.sync, owner=self.owner)
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
