"""Group commit: callers in flight at once share one write, each gets its own answer."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from server.groupcommit import GroupCommit


class Recorder:
    """A write function that records each group; the first group can be held until released."""

    def __init__(self, hold_first: bool = False, bad: frozenset[int] = frozenset()) -> None:
        self.groups: list[list[int]] = []
        self.bad = bad
        self.release = threading.Event()
        self.entered = threading.Event()
        self.hold_first = hold_first
        self.lock = threading.Lock()

    def __call__(self, items):
        with self.lock:
            first = not self.groups
            self.groups.append(list(items))
        if first and self.hold_first:
            self.entered.set()
            assert self.release.wait(10)
        if self.bad.intersection(items):
            raise ValueError(f"bad item in {sorted(items)}")
        return [item * 10 for item in items]


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def queue_behind_a_held_write(pool, commit, write, items):
    """Submit 0 (whose write is held), then ``items`` while it is held; release; return the futures."""
    first = pool.submit(commit.submit, 0)
    assert write.entered.wait(10)
    rest = {n: pool.submit(commit.submit, n) for n in items}
    wait_until(lambda: commit.queued == len(rest))
    write.release.set()
    return first, rest


def test_a_lone_caller_is_written_at_once_in_a_group_of_one():
    write = Recorder()
    commit = GroupCommit(write)
    assert commit.submit(4) == 40
    assert write.groups == [[4]]


def test_callers_queued_during_a_write_share_the_next_one_and_each_gets_its_own_result():
    write = Recorder(hold_first=True)
    commit = GroupCommit(write)
    with ThreadPoolExecutor(max_workers=20) as pool:
        first, rest = queue_behind_a_held_write(pool, commit, write, range(1, 20))
        assert first.result(10) == 0
        assert [f.result(10) for f in rest.values()] == [n * 10 for n in range(1, 20)]
    assert write.groups[0] == [0]
    assert sorted(write.groups[1]) == list(range(1, 20))  # one write for all nineteen
    assert commit.groups == 2 and commit.largest == 19


def test_groups_are_capped_and_the_lead_passes_on_until_the_queue_is_empty():
    write = Recorder(hold_first=True)
    commit = GroupCommit(write, max_group=4)
    with ThreadPoolExecutor(max_workers=11) as pool:
        first, rest = queue_behind_a_held_write(pool, commit, write, range(1, 11))
        assert [f.result(10) for f in [first, *rest.values()]] == [n * 10 for n in range(11)]
    assert [len(g) for g in write.groups] == [1, 4, 4, 2]
    assert sorted(n for g in write.groups for n in g) == list(range(11))
    assert commit.queued == 0
    assert commit.submit(99) == 990  # nobody is left holding the lead


def test_a_failing_item_fails_its_own_caller_only():
    write = Recorder(hold_first=True, bad=frozenset({3}))
    commit = GroupCommit(write)
    with ThreadPoolExecutor(max_workers=6) as pool:
        first, rest = queue_behind_a_held_write(pool, commit, write, range(1, 6))
        assert first.result(10) == 0
        with pytest.raises(ValueError, match="bad item"):
            rest[3].result(10)
        assert {n: f.result(10) for n, f in rest.items() if n != 3} == {1: 10, 2: 20, 4: 40, 5: 50}
    # The group of five failed as a whole, then each item was written alone.
    assert sorted(write.groups[1]) == [1, 2, 3, 4, 5]
    assert sorted(g[0] for g in write.groups[2:]) == [1, 2, 3, 4, 5]


def test_a_write_returning_the_wrong_number_of_results_is_an_error_not_a_silent_mismatch():
    commit = GroupCommit(lambda items: [])
    with pytest.raises(ValueError):
        commit.submit(1)


def test_max_group_must_be_positive():
    with pytest.raises(ValueError):
        GroupCommit(lambda items: items, max_group=0)


def test_two_writers_write_two_groups_at_once_and_every_caller_gets_its_own_result():
    inside = threading.Semaphore(0)
    both = threading.Event()
    current = []
    lock = threading.Lock()

    def write(items):
        with lock:
            current.append(1)
            if len(current) == 2:
                both.set()
        inside.release()
        both.wait(10)  # the first two groups wait for each other: they must be written at once
        return [item * 10 for item in items]

    commit = GroupCommit(write, max_writers=2)
    with ThreadPoolExecutor(max_workers=40) as pool:
        futures = {n: pool.submit(commit.submit, n) for n in range(40)}
        assert {n: f.result(10) for n, f in futures.items()} == {n: n * 10 for n in range(40)}
    assert both.is_set()
    assert commit.queued == 0
    assert commit.submit(7) == 70
