"""A bounded HTTP load generator: a thread pool, each thread with its own keep-alive
session, sending for a fixed number of seconds; latency of every request kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from .common import percentile


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)  # of successful requests, seconds
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def run_load(
    url: str,
    make_body: Callable[[int], dict | None],
    *,
    seconds: float,
    threads: int,
    headers: dict | None = None,
    ok: int = 201,
) -> LoadResult:
    """POST make_body(i) to url from `threads` threads for `seconds`; None ends a thread."""
    counter, lock = iter(range(10**9)), threading.Lock()
    result, deadline = LoadResult(seconds), time.monotonic() + seconds

    def worker(_):
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                body = make_body(next(counter))
            if body is None:
                return
            start = time.perf_counter()
            try:
                r = session.post(url, json=body, headers=headers, timeout=30)
                status = r.status_code
            except requests.RequestException:
                status = 0
            took = time.perf_counter() - start
            with lock:
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status == ok:
                    result.latencies.append(took)

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    result.seconds = time.monotonic() - started
    return result
