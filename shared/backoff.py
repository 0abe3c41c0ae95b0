"""The pause a long-running loop takes after a failure (store or broker away): 0.2 s,
doubling each time, at most 5 s, and back to 0.2 s after the next success. Every kernel
loop (relay, consumers, change-stream doorbell) retries this way, so an outage costs little
CPU and a recovery is noticed within 5 s."""

from __future__ import annotations

import threading
import time

FIRST = 0.2
MOST = 5.0


class Backoff:
    def __init__(self, first: float = FIRST, most: float = MOST):
        self.first, self.most = first, most
        self.delay = first

    def succeeded(self) -> None:
        self.delay = self.first

    def failed(self, stop: threading.Event | None = None) -> None:
        """Pause for the current delay (ending early when `stop` is set), then double it."""
        if stop is None:
            time.sleep(self.delay)
        else:
            stop.wait(self.delay)
        self.delay = min(self.delay * 2, self.most)
