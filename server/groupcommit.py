"""Group commit: requests that arrive together share one database transaction.

Each caller of ``submit`` queues its item and waits. A caller that finds fewer than
``max_writers`` leaders writing becomes one: it takes everything queued (up to ``max_group``
items), writes the group in one call of ``write``, hands every caller its own result, and
passes the lead to the first caller still queued. With ``max_writers=2`` one group can be
built while the other waits on the database (PostgreSQL; SQLite has one writer anyway). Nothing waits on a timer, so a lone request is written at
once, and under load the groups grow by themselves while the previous one is being written.

Every caller gets its answer only after its group was committed: an acknowledged item is
in the database. When a group fails, each of its items is written again alone, so one bad
item fails its own request and no other.

No thread is started: the leader is always one of the waiting callers (so this works the
same under a threaded server, a sync one where groups hold one item, and in tests).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class _Ticket(Generic[T, R]):
    __slots__ = ("item", "wake", "lead", "done", "result", "error")

    def __init__(self, item: T) -> None:
        self.item = item
        self.wake = threading.Event()
        self.lead = False
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Writes items in groups with ``write(items) -> results`` (one result per item, in order)."""

    def __init__(self, write: Callable[[Sequence[T]], Sequence[R]], max_group: int = 128,
                 max_writers: int = 1) -> None:
        if max_group < 1 or max_writers < 1:
            raise ValueError("max_group and max_writers must be at least 1")
        self._write = write
        self._max_group = max_group
        self._max_writers = max_writers
        self._lock = threading.Lock()
        self._queue: list[_Ticket[T, R]] = []
        self._writing = 0  # leaders writing now (at most max_writers)
        self.groups = 0  # groups written (read by the tests; approximate with several writers)
        self.largest = 0  # the largest group written

    @property
    def queued(self) -> int:
        """Callers waiting for a write to take them."""
        with self._lock:
            return len(self._queue)

    def submit(self, item: T) -> R:
        """Write ``item`` (with whatever else is queued) and return its result, or raise its error."""
        ticket: _Ticket[T, R] = _Ticket(item)
        with self._lock:
            self._queue.append(ticket)
            if self._writing < self._max_writers:
                self._writing += 1
                ticket.lead = True
        while True:
            # A lead handed to this caller is always used, even when another leader has
            # meanwhile written its item: otherwise nobody would take the queue.
            with self._lock:
                leading, ticket.lead = ticket.lead, False
            if leading:
                self._lead()
                continue
            if ticket.done:
                break
            ticket.wake.wait()
            ticket.wake.clear()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """Write one group (holding the leader's own ticket), then pass the lead on."""
        with self._lock:
            group = self._queue[:self._max_group]
            del self._queue[:self._max_group]
        try:
            if group:
                self._write_group(group)
        finally:
            for ticket in group:
                if not ticket.done:  # the leader was interrupted (a BaseException) mid-write
                    ticket.error = RuntimeError("the group this item was in was interrupted")
                    ticket.done = True
            with self._lock:
                successor = next((t for t in self._queue if not t.lead), None)  # one lead per caller
                if successor is None:
                    self._writing -= 1
                else:
                    successor.lead = True
            for ticket in group:
                ticket.wake.set()
            if successor is not None:
                successor.wake.set()

    def _write_group(self, group: list[_Ticket[T, R]]) -> None:
        self.groups += 1
        self.largest = max(self.largest, len(group))
        try:
            results = self._write([t.item for t in group])
        except Exception as exc:  # noqa: BLE001 (each item is tried alone below)
            if len(group) == 1:
                group[0].error = exc
                group[0].done = True
                return
            log.warning("a group of %d failed (%s); writing its items one by one", len(group), type(exc).__name__)
            for ticket in group:
                self._write_group([ticket])
            return
        for ticket, result in zip(group, results, strict=True):
            ticket.result = result
            ticket.done = True
