"""The events journal's file: an append-only file of checksummed one-line records.

The file is a header line (``HEADER`` and the base of its record ids) and then one line per
request: ``<crc32> <shop id> <received at> <events> <batch JSON>``, written with one ``write``
(an append costs a few microseconds). A record's id is the base plus the file offset just past
it, so ids only grow. Batches the database refused are kept beside it in
``rejected-<name>.jsonl``. Beside the file, ``events-<name>.lock`` is held under an exclusive
``flock`` by the process that writes the journal, for as long as it lives; it holds the journal's
owner (the database it belongs to, ``journal.database_owner``), so no other database's drainer
adopts it.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
import zlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from server.collect.events import StoredBatch

log = logging.getLogger(__name__)

DRAIN_GROUP = 500  # requests per drain transaction
DRAIN_GROUP_EVENTS = 4000  # ... and at most this many events (a batch holds up to 50)
HEADER = b"pushcart events journal 1 base="  # the first line of a journal file, then its id base
READ_CHUNK = 1 << 20  # bytes read at a time
ROTATE_AT = 64 << 20  # bytes: a journal whose drained part passes this starts a new file (see _rotate)


_LEGACY_SEEN: set[str] = set()  # journals of the earlier format already logged by this process
_FOREIGN_SEEN: set[str] = set()  # journals of another database already logged by this process


@dataclass(frozen=True, slots=True)
class Row:
    """One journaled request, as stored (read into a ``StoredBatch`` only when it is drained, so a
    damaged record is refused by itself instead of stopping the read)."""

    id: int
    shop_id: int
    received_at: str
    body: str
    damage: str | None = None  # why the record cannot be read (a bad checksum, a torn field)

    def item(self) -> StoredBatch:
        """The request as ``store_batches`` takes it (the batch was validated when it arrived)."""
        if self.damage:
            raise ValueError(self.damage)
        return StoredBatch.from_json(self.shop_id, datetime.fromisoformat(self.received_at), self.body)


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

    def __init__(self, path: Path, lock_fd: int, sync: str, owner: str = "") -> None:
        self.path = path
        self.owner = owner  # the database it belongs to ("" for a journal of an earlier release)
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
    def create(cls, directory: Path, sync: str = "normal", owner: str = "") -> Journal:
        """A new, empty journal of this process in ``directory``, locked, its lock file naming
        ``owner`` (the database it belongs to).

        The lock file is locked under a temporary name and then renamed, so no other process
        ever sees this journal unlocked and mistakes it for a dead one's.
        """
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # the batches hold personal data
        name = f"events-{uuid.uuid4().hex}"
        temporary = directory / f".{name}.lock"
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if owner:
            _write_all(fd, owner.encode())
        journal = cls(directory / f"{name}.log", fd, sync, owner)
        os.rename(temporary, directory / f"{name}.lock")
        return journal

    @classmethod
    def adopt(cls, lock_path: Path, sync: str = "normal", owner: str = "") -> Journal | None:
        """The journal behind ``lock_path`` if its process is gone (its lock is free), else None.

        With ``owner``, a journal whose lock file names another owner (another database's,
        moved or copied here) is refused: None, logged. One naming no owner (an earlier
        release's) is taken; the caller decides whether it may be.
        """
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
        found = os.pread(fd, 256, 0).decode(errors="replace").strip()
        if owner and found and found != owner:
            os.close(fd)
            if str(lock_path) not in _FOREIGN_SEEN:
                _FOREIGN_SEEN.add(str(lock_path))
                log.error("journal %s belongs to another database (%s, not %s): not adopted", lock_path.stem,
                          found[:40], owner)
            return None
        path = lock_path.with_suffix(".log")
        try:
            return cls(path, fd, sync, found)
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
