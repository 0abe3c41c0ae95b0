"""The kernel loops' pause after a failure (shared/backoff.py), without a clock to wait on."""

import threading
import time

from shared.backoff import Backoff


def test_the_pause_doubles_to_five_seconds_and_a_success_starts_again():
    stop = threading.Event()
    stop.set()  # a set stop event: `failed` returns at once, so only the delays are seen
    backoff, seen = Backoff(), []
    for _ in range(8):
        seen.append(backoff.delay)
        backoff.failed(stop)
    assert seen == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    backoff.succeeded()
    assert backoff.delay == 0.2


def test_a_stop_ends_the_pause_early():
    stop, backoff = threading.Event(), Backoff(first=5.0)
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    backoff.failed(stop)
    assert time.monotonic() - started < 2.0
