"""The flows at several offered rates, one after another, each on topics and databases of its
own (`BENCH_CAPACITY_RATES`, ticks a second): the latency targets of issue 14 beside the CPU a
tick costs and how busy the machine was, and the highest rate at which every latency target
held. The flows section offers one rate (50 ticks a second, the issue's); this one says
where, on the machine it runs on, the stack stops meeting them, and whether a miss at 50 is
the machine's cores running out (the latencies grow with the machine's busy share) or a
fixed cost of the path (a miss at every rate)."""

from __future__ import annotations

import os
from pathlib import Path

from . import flows
from .common import Report, bench_settings, drop

RATES = tuple(
    float(r) for r in os.environ.get("BENCH_CAPACITY_RATES", "10,25,40,50").split(",") if r
)
# issue 14's latency targets (ms), by the flows section's figure
TARGETS = {
    f"{flows.NAMES['records']} p50": 50.0,
    f"{flows.NAMES['records']} p99": 250.0,
    f"{flows.NAMES['board']} p50": 50.0,
    f"{flows.NAMES['board']} p99": 250.0,
    f"{flows.NAMES['mail']} p99": 500.0,
}
# what else of each run is printed beside them
ALSO = ("ticks achieved", "CPU per tick, every process", "machine busy while counted")


def run(log_dir: Path, report: Report, rates: tuple[float, ...] = RATES) -> None:
    held: list[float] = []
    for rate in rates:
        settings = bench_settings()
        run_report = Report(f"the flows at {rate:g} ticks/s")
        try:
            flows.run(settings, log_dir, run_report, rate=rate)
        finally:
            drop(settings)
        rows = {r["figure"]: r for r in run_report.rows}
        missed = []
        for figure, target in TARGETS.items():
            value = rows[figure]["value"]
            if not value < target:  # a figure measured as NaN (nothing seen) is a miss too
                missed.append(figure)
            report.add(f"{rate:g}/s: {figure}", value, "ms", "issue 14 target", target)
        for figure in ALSO:
            if figure in rows:
                row = rows[figure]
                report.add(f"{rate:g}/s: {figure}", row["value"], row["unit"], note=row["note"])
        achieved = rows["ticks achieved"]["value"]
        if not missed and achieved >= 0.98 * rate:
            held.append(rate)
        report.add(
            f"{rate:g}/s: latency targets missed",
            len(missed),
            f"of {len(TARGETS)}",
            note=", ".join(missed) if missed else "every one met",
        )
    report.add(
        "highest offered rate with every latency target met",
        max(held, default=0.0),
        "ticks/s",
        note=f"of {', '.join(f'{r:g}' for r in rates)} offered, each for "
        f"{flows.SECONDS:.0f} s on {os.cpu_count()} cores" + ("" if held else "; none held them"),
    )
