"""What idle costs. First, one ProjectionRunner with nothing to read, with the kernel's poll
window (`POLL_MS`) and with a 100 ms window, measured one after the other in this process.
Then every long-running process `make up` starts (each service's API under gunicorn, its
relay and its consume process with all projections and loops), left alone, with the
broker and the stores (the main one and notifications' own): their CPU share together,
against issue 14's target of 10 % of one core. The stores' share is only this section's
when they are not shared with other work (run it on ports of its own: RAPPORT_MONGO_PORT,
bench/README.md).

The local broker answers a fetch at once instead of holding it for `fetch_max_wait_ms`, so
while `poll()` waits the client sends fetch after fetch: the CPU goes into the poll window."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from services.records.projections import ClientSummaries
from shared import services
from shared.consumer import POLL_MS, ProjectionRunner
from testkit.procs import Gunicorn, worker

from .common import Report, cpu_seconds, server_pids, store_ops

SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "15"))
SETTLE = 20.0  # after start: group joins, topic creation, the first status reports
TARGET = 10.0  # % of one core for everything together (issue 14)


def _idle_share(settings, poll_ms: int) -> float:
    runner = ProjectionRunner(settings, ClientSummaries())
    runner.poll_ms = poll_ms
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while (
            not (runner.consumer and runner.consumer.assignment()) and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        time.sleep(2)  # past the join and the first fetches
        before, started = os.times(), time.monotonic()
        time.sleep(SECONDS)
        after, ended = os.times(), time.monotonic()
    finally:
        stop.set()
        thread.join(timeout=30)
    return ((after.user - before.user) + (after.system - before.system)) / (ended - started)


def _whole_stack(settings, log_dir: Path) -> tuple[dict[str, float], dict[str, float]]:
    """{process: % of one core} of the idle stack, measured together over SECONDS."""
    names = [d.name for d in services.available() if d.name != "portal"]
    procs = []
    for name in names:
        procs.append(
            Gunicorn(
                f"services.{name}.wsgi:app", settings, log_dir=log_dir, name=f"idle-{name}-api"
            )
        )
        procs.append(worker(settings, "relay", name, log_dir=log_dir, name=f"idle-{name}-relay"))
        procs.append(
            worker(settings, "consume", name, log_dir=log_dir, name=f"idle-{name}-consumers")
        )
    try:
        for p in procs:
            p.start()
        time.sleep(SETTLE)
        pids = {p.name: p.pid for p in procs if p.alive()}
        pids.update(server_pids())
        before = {n: cpu_seconds(pid) for n, pid in pids.items()}
        ops = store_ops(settings)
        started = time.monotonic()
        time.sleep(SECONDS)
        elapsed = time.monotonic() - started
        shares = {n: (cpu_seconds(pid) - before[n]) / elapsed * 100 for n, pid in pids.items()}
        commands = {k: (v - ops[k]) / elapsed for k, v in store_ops(settings).items()}
        return shares, commands
    finally:
        for p in procs:
            p.stop()


def run(settings, report: Report, log_dir: Path) -> None:
    ours = _idle_share(settings.with_(topic_prefix=settings.topic_prefix + "a."), POLL_MS)
    wide = _idle_share(settings.with_(topic_prefix=settings.topic_prefix + "b."), 100)
    report.add(
        f"idle consumer CPU, poll {POLL_MS} ms + rest",
        ours * 100,
        "% of a core",
        "the same with a 100 ms poll window",
        wide * 100,
        note=f"one ProjectionRunner, nothing to read, {SECONDS:.0f}s each",
    )
    shares, commands = _whole_stack(
        settings.with_(topic_prefix=settings.topic_prefix + "c."), log_dir
    )
    total = sum(shares.values())
    top = ", ".join(f"{n} {v:.1f}" for n, v in sorted(shares.items(), key=lambda kv: -kv[1])[:4])
    report.add(
        "whole stack idle CPU (every process + store + broker)",
        total,
        "% of a core",
        "target (issue 14)",
        TARGET,
        note=f"{SECONDS:.0f}s after {SETTLE:.0f}s; largest: {top}",
    )
    busiest = ", ".join(
        f"{k} {v:.1f}" for k, v in sorted(commands.items(), key=lambda kv: -kv[1]) if v > 0
    )
    report.add(
        "whole stack idle: store operations",
        sum(commands.values()),
        "ops/s",
        note=f"serverStatus opcounters over the same window (this bench's own two included): "
        f"{busiest}",
    )
