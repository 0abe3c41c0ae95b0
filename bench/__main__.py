"""`make bench`: every figure measured side by side with its limit in one run, printed as a
table of ratios (value / limit) and saved as JSON under bench/results/."""
from __future__ import annotations

import sys

from shared import logs

from . import kernel
from .common import bench_settings, save


def main() -> int:
    logs.configure("bench", level="WARNING")
    reports = []
    settings = bench_settings()
    reports.append(kernel.run(settings))
    for r in reports:
        r.print()
    print(f"\nsaved {save(reports)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
