"""Kernel bugs found while running the fault cases and benches, kept as strict xfails until
fixed (shared/ belongs to the kernel owner). When one starts passing, strict=True fails the
suite so the marker is removed."""
from __future__ import annotations

import subprocess
import sys

import pytest

from bench.procs import ROOT


@pytest.mark.xfail(strict=True, reason=(
    "shared/logs.py configure(): root.setLevel(os.environ['RAPPORT_LOG_LEVEL']) rejects a "
    "lower-case level ('warning'), while deploy/gunicorn.conf.py lower-cases the same variable "
    "for gunicorn, so RAPPORT_LOG_LEVEL=warning (valid for gunicorn) makes every service fail "
    "to boot with ValueError: Unknown level. Fix: .upper() the value in configure()."))
def test_a_lower_case_log_level_that_gunicorn_accepts_also_boots_the_services():
    code = "from shared import logs; logs.configure('records')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "RAPPORT_LOG_LEVEL": "warning"}, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]
