"""What an idle projection consumer costs: the CPU share of one core used by a
ProjectionRunner with nothing to read, with the kernel's poll window (`POLL_MS`) and with a
100 ms window (the limit it is compared with), measured one after the other in this process.

The local broker answers a fetch at once instead of holding it for `fetch_max_wait_ms`, so
while `poll()` waits the client sends fetch after fetch: the CPU goes into the poll window.
A service's consume process runs several runners, so this is paid several times over."""
from __future__ import annotations

import os
import threading
import time

from shared.consumer import POLL_MS, ProjectionRunner

from services.records.projections import ClientSummaries

from .common import Report

SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "15"))


def _idle_share(settings, poll_ms: int) -> float:
    runner = ProjectionRunner(settings, ClientSummaries())
    runner.poll_ms = poll_ms
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not (runner.consumer and runner.consumer.assignment()) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # past the join and the first fetches
        before, started = os.times(), time.monotonic()
        time.sleep(SECONDS)
        after, ended = os.times(), time.monotonic()
    finally:
        stop.set()
        thread.join(timeout=30)
    return ((after.user - before.user) + (after.system - before.system)) / (ended - started)


def run(settings, report: Report) -> None:
    ours = _idle_share(settings.with_(topic_prefix=settings.topic_prefix + "a."), POLL_MS)
    wide = _idle_share(settings.with_(topic_prefix=settings.topic_prefix + "b."), 100)
    report.add(f"idle consumer CPU, poll {POLL_MS} ms + rest", ours * 100, "% of a core",
               "the same with a 100 ms poll window", wide * 100,
               note=f"one ProjectionRunner, nothing to read, {SECONDS:.0f}s each")
