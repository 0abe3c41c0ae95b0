"""`make bench`: every figure measured side by side with its limit in one run, printed as a
table of ratios (value / limit) and saved as JSON under bench/results/.

Sections (all by default; choose with
BENCH_SECTIONS=kernel,booking,flows,busy,capacity,scale,idle,store,drop):
kernel (bench/kernel.py), booking throughput under gunicorn (booking.py), end-to-end
latencies with real relay/consumer processes and their memory (flows.py), the same at
several offered rates and the highest that meets every latency target (capacity.py), a service
projection from 10k to 100k events (scale.py), an idle consumer's CPU (idle.py), the local
store aged by many sessions, with and without deploy/local/store.py (store.py), a retired
generation dropped while others write (drop.py)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from deploy.local import infra
from shared import heap, logs

from . import booking, capacity, common, flows, idle, kernel, scale, store
from . import drop as drop_section
from .common import Report, bench_settings, drop, save

SECTIONS = ("kernel", "booking", "flows", "busy", "capacity", "scale", "idle", "store", "drop")


def _memory(report: Report, rss: dict) -> None:
    for name, mib in rss.items():
        report.add(f"peak RSS {name}", mib, "MiB", note="VmHWM under the section's load")


def main() -> int:
    logs.configure("bench", level="WARNING")
    wanted = [s for s in os.environ.get("BENCH_SECTIONS", ",".join(SECTIONS)).split(",") if s]
    log_dir = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
    # as `make up`: writers wake the other processes' idle loops (shared.chime); an empty
    # RAPPORT_WAKE_DIR measures the stack without it (polling only)
    os.environ.setdefault("RAPPORT_WAKE_DIR", str(log_dir / "wake"))
    reports = []
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    # the local servers already answering (`make up`'s, an operator's) stay; those the bench
    # starts (bench_settings) are stopped at the end, as the tests do (testkit.plugin)
    running = {s.name for s in infra.servers() if s.pid() and s.answering()}
    common.started = {s.name for s in infra.servers()} - running
    try:
        path = _sections(wanted, log_dir, reports, stamp)
    finally:
        if not os.environ.get("RAPPORT_KEEP_INFRA"):
            for server in infra.servers():
                if server.name not in running:
                    infra.stop(server.name)
    print(f"\nprocess logs in {log_dir}")
    print(f"saved {path}")
    return 0


def _sections(wanted: list[str], log_dir: Path, reports: list, stamp: str) -> Path | None:
    path = None
    for section in wanted:
        settings = bench_settings()  # each section its own topics and databases
        # the bench's process keeps what it holds out of the garbage collector's full passes
        # as every process of the stack does (shared/heap.py): it runs the kernel's and the
        # scale section's work and their limits side by side, and the flows' load and
        # watchers, where one full pass was 48-123 ms of a flows run (session 37)
        heap.settle()
        started = time.monotonic()
        try:
            if section == "kernel":
                report = kernel.run(settings)
            elif section == "booking":
                report = Report("booking under gunicorn")
                _memory(report, booking.run(settings, log_dir, report))
            elif section == "flows":
                report = Report("end to end, real processes")
                _memory(report, flows.run(settings, log_dir, report))
            elif section == "busy":
                report = Report("end to end while a projection is rebuilt")
                flows.run(settings, log_dir, report, rebuild=True)
            elif section == "capacity":
                rates = ", ".join(f"{r:g}" for r in capacity.RATES)
                report = Report(f"the flows at {rates} ticks/s, one after another")
                capacity.run(log_dir, report)
            elif section == "scale":
                report = Report(f"records summaries at {', '.join(map(str, scale.SIZES))} events")
                scale.run(settings, report)
            elif section == "idle":
                report = Report("idle consumer")
                idle.run(settings, report, log_dir)
            elif section == "store":
                report = Report(f"the local store after {store.SESSIONS} sessions")
                store.run(report)
            elif section == "drop":
                report = Report(
                    f"a retired generation dropped under {drop_section.WRITERS} writers"
                )
                drop_section.run(report)
            else:
                raise SystemExit(f"unknown section {section!r}; choose from {SECTIONS}")
        finally:
            drop(settings)
        report.name += f" ({time.monotonic() - started:.0f}s)"
        report.print()
        reports.append(report)
        path = save(reports, stamp)  # after every section: a long run cut short keeps the rest
    return path


if __name__ == "__main__":
    sys.exit(main())
