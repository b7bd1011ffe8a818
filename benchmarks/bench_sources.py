"""Timing of the demo smear renderer and of the newest-wins mailbox.

Run with ``python benchmarks/bench_sources.py``. Prints numbers; asserts nothing.
Target: demo render well under 10 ms per 640x480 frame.
"""

from __future__ import annotations

import statistics
import threading
import time

from micro_app.core.mailbox import Mailbox
from micro_app.core.sources import DemoSource


def bench_demo(frames: int = 300, width: int = 640, height: int = 480) -> None:
    src = DemoSource(width, height, rate=None, seed=0)
    t0 = time.perf_counter()
    src.open()
    open_ms = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(frames):
        t = time.perf_counter()
        src.read()
        times.append((time.perf_counter() - t) * 1000)
    src.close()
    times.sort()
    p95 = times[int(0.95 * len(times)) - 1]
    print(f"demo {width}x{height}: open {open_ms:.0f} ms (renders the whole smear once)")
    print(
        f"demo {width}x{height}: render median {statistics.median(times):.2f} ms/frame, "
        f"mean {statistics.fmean(times):.2f}, p95 {p95:.2f}, max {times[-1]:.2f}"
    )


def bench_mailbox_single_thread(n: int = 200_000) -> None:
    box: Mailbox[int] = Mailbox()
    t = time.perf_counter()
    for i in range(n):
        box.put(i)
    put_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(n):
        box.get(timeout=0)
    get_s = time.perf_counter() - t
    print(f"mailbox: put {n / put_s / 1e3:.0f} k/s, get (non-blocking) {n / get_s / 1e3:.0f} k/s")


def bench_mailbox_threads(n: int = 100_000) -> None:
    box: Mailbox[int] = Mailbox()
    received = 0

    def consume() -> None:
        nonlocal received
        last = 0
        while True:
            got = box.get(timeout=1.0, after_seq=last)
            if got is None:
                return
            last = got[0]
            received += 1

    reader = threading.Thread(target=consume)
    reader.start()
    t = time.perf_counter()
    for i in range(n):
        box.put(i)
    elapsed = time.perf_counter() - t
    box.close()
    reader.join()
    print(
        f"mailbox: producer + blocking consumer: {n / elapsed / 1e3:.0f} k puts/s, "
        f"consumer took {received} of {n} ({box.dropped} dropped, newest wins)"
    )


def main() -> None:
    bench_demo()
    bench_mailbox_single_thread()
    bench_mailbox_threads()


if __name__ == "__main__":
    main()
