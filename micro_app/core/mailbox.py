"""A one-slot mailbox where the newest item wins.

The producer (camera thread, inference thread) calls :meth:`Mailbox.put`; any number of readers
(an inference thread, the GUI poller) call :meth:`Mailbox.get` or :meth:`Mailbox.latest`.
Reading never removes the item: the mailbox holds "the latest value and its sequence number",
and each reader remembers the last sequence number it saw::

    last = 0
    while running:
        got = box.get(timeout=0.1, after_seq=last)
        if got is None:
            continue
        last, frame = got

Sequence numbers start at 1 for the first item put; ``seq == 0`` means nothing was put yet.
A reader sees strictly increasing sequence numbers; the gap ``new - last - 1`` is how many items
that reader skipped.

``dropped`` counts items that were overwritten by a newer ``put`` before any ``get`` returned
them, i.e. items no consumer ever took. ``latest()`` is a peek for observers (a GUI display)
and does not count as taking, so a slow inference thread shows up in ``dropped`` even when
the GUI displays every frame.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """Thread-safe one-slot mailbox: ``put`` overwrites, readers wait for a newer ``seq``."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._item: T | None = None
        self._seq = 0
        self._taken = True  # the (absent) initial item counts as taken
        self._dropped = 0
        self._closed = False

    def put(self, item: T) -> int:
        """Store ``item`` as the newest and wake waiting readers; returns its sequence number.

        An item put after :meth:`close` is discarded (not counted as dropped) and the current
        sequence number is returned unchanged.
        """
        with self._cond:
            if self._closed:
                return self._seq
            if not self._taken:
                self._dropped += 1
            self._item = item
            self._seq += 1
            self._taken = False
            self._cond.notify_all()
            return self._seq

    def get(
        self, timeout: float | None = None, after_seq: int | None = None
    ) -> tuple[int, T] | None:
        """Wait for an item newer than ``after_seq`` and return ``(seq, item)``.

        ``after_seq=None`` (or 0) accepts any item, so the current one is returned at once if
        there is one. ``timeout=None`` waits forever, ``timeout=0`` does not wait. Returns None
        on timeout, or when the mailbox is closed and holds nothing newer: after ``close`` a
        reader still receives an item it has not seen yet, then None.
        """
        last = 0 if after_seq is None else after_seq
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._seq <= last:
                if self._closed:
                    return None
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._cond.wait(remaining)
            self._taken = True
            return self._seq, self._item  # type: ignore[return-value]

    def latest(self) -> tuple[int, T] | None:
        """Peek at the newest ``(seq, item)`` without waiting; None if nothing was put yet."""
        with self._cond:
            if self._seq == 0:
                return None
            return self._seq, self._item  # type: ignore[return-value]

    def close(self) -> None:
        """Refuse further puts and wake every waiting reader."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def seq(self) -> int:
        """Sequence number of the newest item (0 before the first put)."""
        with self._cond:
            return self._seq

    @property
    def dropped(self) -> int:
        """Items overwritten before any ``get`` returned them (``latest`` peeks don't count)."""
        with self._cond:
            return self._dropped

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed
