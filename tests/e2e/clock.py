"""The scheduling API of the end-to-end stack, with a clock a test may move forward.

A session can be marked attended only once it has started (scheduling's rule), and the Book
page offers only future slots, so a browser test that books a course and then holds its
first session must let time pass: it writes an offset in seconds to `clock-offset-seconds`
in the stack's run folder (`Stack.shift_clock`), and this app's clock reads it (0 when the
file is absent). Only the scheduling API's clock moves; it is the clock services' tests
inject too (services/scheduling/app.py)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from services.scheduling.app import create_app
from shared.config import Settings
from shared.events import utcnow

OFFSET_FILE = "clock-offset-seconds"


def _offset_path() -> Path:
    return Path(os.environ.get("RAPPORT_RUN_DIR", ".")) / OFFSET_FILE


def shifted_now() -> datetime:
    try:
        seconds = float(_offset_path().read_text())
    except (OSError, ValueError):
        seconds = 0.0
    return utcnow() + timedelta(seconds=seconds)


app = create_app(Settings.from_env(), clock=shifted_now)
