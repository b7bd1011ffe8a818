"""The one-slot newest-wins mailbox."""

from __future__ import annotations

import threading
import time

from micro_app.core.mailbox import Mailbox


def test_empty_mailbox() -> None:
    box: Mailbox[str] = Mailbox()
    assert box.seq == 0
    assert box.latest() is None
    assert box.get(timeout=0) is None
    assert box.dropped == 0


def test_newest_wins_and_reading_does_not_consume() -> None:
    box: Mailbox[str] = Mailbox()
    assert box.put("a") == 1
    assert box.put("b") == 2
    assert box.latest() == (2, "b")
    assert box.get(timeout=0) == (2, "b")
    # A second reader (or the same one without after_seq) still sees the item.
    assert box.get(timeout=0) == (2, "b")
    assert box.latest() == (2, "b")
    assert box.get(timeout=0, after_seq=2) is None


def test_dropped_counts_items_no_get_ever_took() -> None:
    box: Mailbox[int] = Mailbox()
    box.put(1)
    box.put(2)  # 1 was never taken
    assert box.dropped == 1
    assert box.get(timeout=0) == (2, 2)
    box.put(3)  # 2 was taken: not a drop
    assert box.dropped == 1
    assert box.latest() == (3, 3)  # a peek is not a take
    box.put(4)
    assert box.dropped == 2


def test_get_times_out_when_nothing_newer() -> None:
    box: Mailbox[int] = Mailbox()
    box.put(1)
    start = time.monotonic()
    assert box.get(timeout=0.05, after_seq=1) is None
    assert time.monotonic() - start >= 0.04


def test_blocking_get_wakes_on_put() -> None:
    box: Mailbox[str] = Mailbox()
    timer = threading.Timer(0.05, box.put, args=("x",))
    timer.start()
    try:
        assert box.get(timeout=5) == (1, "x")
    finally:
        timer.join()


def test_close_wakes_waiters_and_refuses_puts() -> None:
    box: Mailbox[str] = Mailbox()
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(box.get()))
    waiter.start()
    time.sleep(0.05)
    box.close()
    waiter.join(2)
    assert not waiter.is_alive()
    assert results == [None]
    assert box.closed
    assert box.put("late") == 0
    assert box.latest() is None


def test_unseen_item_is_still_delivered_after_close() -> None:
    box: Mailbox[str] = Mailbox()
    box.put("last")
    box.close()
    assert box.get(timeout=0, after_seq=0) == (1, "last")
    assert box.get(after_seq=1) is None  # closed and nothing newer: no wait


def test_concurrent_readers_see_increasing_sequence() -> None:
    box: Mailbox[int] = Mailbox()
    n = 5000
    seen: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}

    def consume(name: str) -> None:
        last = 0
        while True:
            got = box.get(timeout=2, after_seq=last)
            if got is None:
                return
            seen[name].append(got)
            last = got[0]
            if got[1] == n - 1:
                return

    readers = [threading.Thread(target=consume, args=(k,)) for k in seen]
    for r in readers:
        r.start()
    for i in range(n):
        box.put(i)
    for r in readers:
        r.join(5)
        assert not r.is_alive()
    for got in seen.values():
        seqs = [s for s, _ in got]
        assert seqs == sorted(set(seqs)), "out of order or repeated"
        assert all(item == s - 1 for s, item in got)
        assert got[-1] == (n, n - 1)
    assert 0 <= box.dropped <= n - 1
