"""The events journal: the collect API's batches on the web host's disk until the database has them.

An events request is the hottest call of the service: every page view of every shop. Writing
each batch to PostgreSQL before answering puts several round trips and a commit on every page
view. With the journal, the request validates its batch, appends it as one line to a local file
and is answered; a thread of the same process drains the journal into the database in groups
(``store_batches``: a handful of statements and one commit for up to ``DRAIN_GROUP`` requests).

Files: one journal per process in ``COLLECT_JOURNAL_DIR``, ``events-<name>.log`` (an append-only
file of checksummed records, see ``Journal``) beside ``events-<name>.lock``, which the process
holds under an exclusive ``flock`` while it lives. An append is one ``write`` (measured here:
4 us; the SQLite file this replaced took 22 us alone and about 50 us inside a loaded worker).

Exactly once: every journal has a row in the database's ``journal_marks`` holding the id of the
last record stored. A drain locks the mark, stores the records after it and moves the mark in
the same transaction; only then does it pass them in the file. A crash in between leaves records
that the mark already covers: they are skipped, never stored twice. Record ids only grow (the
file offset past the record, plus a base carried over when a drained file starts over).

Nothing lost: a process that dies (a crash, ``kill -9``, a reboot) leaves its journal behind, and
the kernel releases its lock. Every drainer looks for such journals (at start, then every
``ADOPT_EVERY`` seconds), takes the lock, drains them and removes them. A record cut short by
the crash was never answered and is dropped. A database outage only delays the drain: batches
are still accepted, up to ``COLLECT_JOURNAL_MAX_PENDING`` per process, beyond which the API
answers 503 with ``Retry-After``.

Durability: with ``COLLECT_JOURNAL_SYNC=normal`` (the default) an answered batch is in the
kernel's page cache, so it survives the process dying; a power cut may lose the batches of the
last moments. ``full`` syncs each append to disk before the answer (measured here: 0.23 ms per
request instead of 0.004 ms).

A batch the database refuses for itself (not an outage: its shop was deleted meanwhile, a
damaged record) is written to ``rejected-events-<name>.jsonl``, logged and counted; it never
holds up the batches behind it, and is skipped if the journal is read again. That file stays
for an operator when the journal is drained and deleted.
"""
from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import threading
import time
import uuid
import zlib
from collections import deque
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

HEADER = b"pushcart events journal 1 base="  # the first line of a journal file, then its id base
READ_CHUNK = 1 << 20  # bytes read at a time
ROTATE_AT = 64 << 20  # bytes: a journal whose drained part passes this starts a new file (see _rotate)


_LEGACY_SEEN: set[str] = set()  # journals of the earlier format already logged by this process


class JournalFull(Exception):
    """This process's journal holds ``COLLECT_JOURNAL_MAX_PENDING`` batches not yet drained, or
    its disk refuses the write (full, or a file size limit): the batch was not kept."""


@dataclass(frozen=True, slots=True)
class Row:
    """One journaled request, as stored (read into an ``EventsIn`` only when it is drained, so a
    damaged record is refused by itself instead of stopping the read)."""

    id: int
    shop_id: int
    received_at: str
    body: str
    damage: str | None = None  # why the record cannot be read (a bad checksum, a torn field)

    def item(self) -> EventsIn:
        """The request as ``store_batches`` takes it (the batch was validated when it arrived)."""
        if self.damage:
            raise ValueError(self.damage)
        return EventsIn(self.shop_id, JournaledBatch.from_json(self.body), datetime.fromisoformat(self.received_at))


def _parse(record_id: int, line: bytes) -> tuple[Row, int]:
    """A record line (``<crc32> <shop id> <received at> <events> <body>``) as a row and its
    count of events; a damaged line is a row that ``item`` refuses."""
    checksum, _, payload = line.partition(b" ")
    try:
        if int(checksum, 16) != zlib.crc32(payload):
            raise ValueError("the checksum does not match")
        shop_id, received_at, events, body = payload.decode().split(" ", 3)
        return Row(record_id, int(shop_id), received_at, body), int(events)
    except (ValueError, UnicodeDecodeError) as exc:
        return Row(record_id, 0, "", line.decode(errors="replace"), damage=f"a damaged journal record ({exc})"), 1


def _header_for(first_id_base: int) -> bytes:
    """The header line of a file whose records start where id ``first_id_base`` ends: its
    base is ``first_id_base`` less the header's own length (which depends on the base's digits)."""
    length = len(HEADER) + len(str(first_id_base)) + 1
    while True:
        header = HEADER + b"%d\n" % (first_id_base - length)
        if len(header) == length:
            return header
        length = len(header)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Journal:
    """One journal file: appended to by request threads, read and passed by one drainer.

    The file is a header line (``HEADER`` and the base of its record ids) and then one line per
    request: ``<crc32> <shop id> <received at> <events> <batch JSON>``. A record's id is the base
    plus the file offset just past it, so ids only grow; the drainer passes a record by moving its
    read offset, and a journal drained empty beyond ``ROTATE_AT`` bytes starts a new file whose
    base is the last id (``_rotate``), so an id is never given twice under one name. A record cut
    short by a crash was never answered, and is cut off when the journal is opened again.

    Batches the database refuses are kept in ``rejected-<name>.jsonl`` beside it, one JSON
    object per line, and skipped by id when the journal is read again.

    Holds the journal's lock from ``open``/``adopt`` until ``close``/``remove``.
    """

    def __init__(self, path: Path, lock_fd: int, sync: str) -> None:
        self.path = path
        self.name = path.stem  # "events-<hex>": the key of its mark in the database
        self._lock_fd = lock_fd
        self._sync = sync == "full"
        self._write_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.rejected_path = path.with_name(f"rejected-{self.name}.jsonl")
        self._rejected_ids = self._load_rejected()
        self._fd, self._base, self._start, self._end = self._open()
        self._read_offset = self._start
        self._unconsumed: deque[int] = deque()  # ids handed out by ``read``, not yet passed
        self.pending = self._count_pending()
        self.appended = 0  # batches appended by this process (never goes down)

    def _open(self) -> tuple[int, int, int, int]:
        """Open (or begin) the file; return its descriptor, id base, first and end offsets."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                header = HEADER + b"0\n"
                _write_all(fd, header)
                os.fsync(fd)
                return fd, 0, len(header), len(header)
            first = os.pread(fd, 128, 0)
            if not first.startswith(HEADER) or b"\n" not in first:
                raise ValueError(f"{self.path.name} is not an events journal")
            line = first.split(b"\n", 1)[0]
            base, start = int(line[len(HEADER):]), len(line) + 1
            end = self._complete_end(fd, start, size)
            if end < size:
                os.ftruncate(fd, end)  # a record cut short: its request was never answered
            return fd, base, start, end
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def _complete_end(fd: int, start: int, size: int) -> int:
        """The offset just past the last complete record (the last newline) at or after ``start``."""
        position = size
        while position > start:
            chunk_start = max(start, position - READ_CHUNK)
            found = os.pread(fd, position - chunk_start, chunk_start).rfind(b"\n")
            if found >= 0:
                return chunk_start + found + 1
            position = chunk_start
        return start

    def _load_rejected(self) -> set[int]:
        ids: set[int] = set()
        try:
            with open(self.rejected_path, "rb") as kept:
                for line in kept:
                    try:
                        ids.add(int(json.loads(line)["id"]))
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by a crash: its batch is refused again
        except FileNotFoundError:
            pass
        return ids

    def _count_pending(self) -> int:
        count, position = 0, self._start
        while position < self._end:
            chunk = os.pread(self._fd, min(READ_CHUNK, self._end - position), position)
            count += chunk.count(b"\n")
            position += len(chunk)
        low, high = self._base + self._start, self._base + self._end
        return count - sum(1 for rejected in self._rejected_ids if low < rejected <= high)

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
        journal = cls(directory / f"{name}.log", fd, sync)
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
        if lock_path.with_suffix(".sqlite").exists():
            # A journal of the earlier SQLite format (before 2026-11-24): this version cannot drain
            # it, and must not remove it; its lock stays, so it is not taken for an empty journal.
            os.close(fd)
            if str(lock_path) not in _LEGACY_SEEN:
                _LEGACY_SEEN.add(str(lock_path))
                log.error("journal %s is of the earlier SQLite format: drain it with that release "
                          "(its batches are not lost, and not stored either)", lock_path.with_suffix(".sqlite").name)
            return None
        path = lock_path.with_suffix(".log")
        try:
            return cls(path, fd, sync)
        except ValueError as exc:
            # Not a journal this version can read: keep it for an operator, out of every drainer's way.
            kept = path.with_name(f"unreadable-{path.name}")
            if path.exists():
                os.rename(path, kept)
            lock_path.unlink(missing_ok=True)
            os.close(fd)
            log.error("journal %s cannot be read (%s): kept as %s", path.name, exc, kept.name)
            return None

    def append(self, shop_id: int, received_at: datetime, events: int, body: str) -> None:
        """Keep one request's batch (on disk when this returns; synced too with ``full``)."""
        if "\n" in body:
            raise ValueError("a journaled batch is one line of JSON")
        payload = f"{shop_id} {received_at.isoformat()} {events} {body}".encode()
        line = b"%08x %s\n" % (zlib.crc32(payload), payload)
        with self._write_lock:
            try:
                _write_all(self._fd, line)
                if self._sync:
                    os.fdatasync(self._fd)
            except OSError:
                os.ftruncate(self._fd, self._end)  # (a full disk) no half record for the next to follow
                raise
            self._end += len(line)
        with self._count_lock:
            self.pending += 1
            self.appended += 1

    def read(self, max_rows: int = DRAIN_GROUP, max_events: int = DRAIN_GROUP_EVENTS) -> list[Row]:
        """The oldest rows, up to ``max_rows`` requests or ``max_events`` events (at least one row)."""
        rows: list[Row] = []
        events = 0
        handed: deque[int] = deque()
        end = self._end  # (records past it may be half written)
        data, data_at, fetched, index = b"", self._read_offset, self._read_offset, 0
        while len(rows) < max_rows:
            newline = data.find(b"\n", index)
            if newline < 0:
                if fetched >= end:
                    break
                more = os.pread(self._fd, min(READ_CHUNK, end - fetched), fetched)
                data, data_at, index = data[index:] + more, data_at + index, 0
                fetched += len(more)
                continue
            record_id = self._base + data_at + newline + 1
            line, index = data[index:newline], newline + 1
            if record_id in self._rejected_ids:
                if not rows:
                    self._read_offset = record_id - self._base  # refused before: passed for good
                else:
                    handed.append(record_id)
                continue
            row, count = _parse(record_id, line)
            if rows and events + count > max_events:
                break
            rows.append(row)
            handed.append(record_id)
            events += count
        self._unconsumed = handed
        return rows

    def pass_through(self, row_id: int) -> None:
        """Pass the rows up to ``row_id`` (the database has them, or they were refused): move the
        read offset past it, count them off ``pending`` and start a new file if it is time."""
        passed = 0
        while self._unconsumed and self._unconsumed[0] <= row_id:
            passed += self._unconsumed.popleft() not in self._rejected_ids
        self._read_offset = max(self._read_offset, row_id - self._base)
        with self._count_lock:
            self.pending -= passed
        self._rotate()

    def reject(self, row: Row, reason: str, now: datetime) -> None:
        """Keep a row the database refused in the rejected file, and pass it."""
        record = json.dumps({"id": row.id, "shop_id": row.shop_id, "received_at": row.received_at, "body": row.body,
                             "reason": reason[:500], "rejected_at": now.isoformat()})
        fd = os.open(self.rejected_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            _write_all(fd, record.encode() + b"\n")
            os.fsync(fd)  # (rare) a refused batch is the only copy of it
        finally:
            os.close(fd)
        self.pass_through(row.id)  # (counted off pending before it joins the rejected ids)
        self._rejected_ids.add(row.id)

    def _rotate(self) -> None:
        """Start a new file once the passed part has grown past ``ROTATE_AT`` and what is left
        to drain is small (at most ``ROTATE_AT // 4``): the records not yet passed are copied
        into it, renamed over the old file (appends wait meanwhile). Under steady load a journal
        is never drained empty, so this keeps its file near ``ROTATE_AT`` instead of growing for
        ever. The new file's id base is chosen so every record keeps its id (id = base + the
        offset past it), so the mark, the rows handed out and the refused ids stay true."""
        if self._read_offset < ROTATE_AT:
            return
        with self._write_lock:
            tail_at, end = self._read_offset, self._end
            if end - tail_at > ROTATE_AT // 4:
                return  # a backlog (a database outage): copying it now would cost more than it frees
            tail = os.pread(self._fd, end - tail_at, tail_at) if end > tail_at else b""
            header = _header_for(self._base + tail_at)
            base = self._base + tail_at - len(header)
            temporary = self.path.with_name(f".{self.path.name}.new")
            fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            try:
                _write_all(fd, header + tail)
                os.fsync(fd)
                os.rename(temporary, self.path)
            except BaseException:
                os.close(fd)
                raise
            os.close(self._fd)
            self._fd, self._base = fd, base
            self._start = self._read_offset = len(header)
            self._end = len(header) + len(tail)

    def oldest(self) -> datetime | None:
        """When the oldest batch not yet drained arrived."""
        with self._write_lock:  # (the file may be rotated under a reader)
            if self._read_offset >= self._end:
                return None
            head = os.pread(self._fd, 128, self._read_offset)
        try:
            return datetime.fromisoformat(head.split(b" ", 3)[2].decode())
        except (IndexError, ValueError, UnicodeDecodeError):
            return None  # a damaged record: the drain sets it aside

    def rejected(self) -> int:
        return len(self._rejected_ids)

    def close(self) -> None:
        """Close the files and release the lock (the journal stays, for a later drainer)."""
        os.close(self._fd)
        os.close(self._lock_fd)

    def remove(self) -> None:
        """Delete the journal's files, then release the lock. Only for a journal drained empty
        (its refused batches, if any, stay in their own file): the lock file goes first, so
        nobody adopts what is being deleted."""
        self.path.with_suffix(".lock").unlink(missing_ok=True)
        os.close(self._fd)
        self.path.unlink(missing_ok=True)
        os.close(self._lock_fd)

    def set_aside(self) -> Path:
        """Delete a journal drained empty that has rejected batches, keeping those (in
        ``rejected-<name>.jsonl``, which no drainer reads) for an operator; return its path."""
        self.remove()
        return self.rejected_path


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


def journal_settings(app: Flask) -> JournalSettings:
    """Where and how events are journaled."""
    directory = app.config["COLLECT_JOURNAL_DIR"] or os.path.join(app.instance_path, "journal")
    return JournalSettings(Path(directory), app.config["COLLECT_JOURNAL_SYNC"],
                           app.config["COLLECT_JOURNAL_MAX_PENDING"])


def check_journal(app: Flask) -> None:
    """At start: ``COLLECT_JOURNAL_DIR`` must be (or become) a writable folder; raises
    ValueError otherwise, instead of failing every events request."""
    directory = journal_settings(app).directory
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
        try:
            drainer.journal.append(shop_id, received_at, len(batch.events), batch.model_dump_json(exclude_none=True))
        except OSError as exc:
            log.error("journal %s cannot be written: %s", drainer.journal.name, exc.strerror or exc)
            raise JournalFull(f"the journal cannot be written ({exc.strerror or exc})") from None
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


def event_journal(app: Flask) -> EventJournal:
    """The app's ``EventJournal``."""
    app = getattr(app, "_get_current_object", lambda: app)()  # the app itself, not current_app
    if EXTENSION not in app.extensions:
        app.extensions.setdefault(EXTENSION, EventJournal(app, journal_settings(app)))
    return app.extensions[EXTENSION]
