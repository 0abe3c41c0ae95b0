"""A retired projection generation dropped while others write (shared.mongo.drop_in_pieces).

On a store of its own (deploy/local/store.py, as `make up` starts it), a collection of
`BENCH_DROP_DOCS` documents (30,000 unless told; four indexes, one unique, ~0.5 KB each) is
dropped while `WRITERS` threads each run transactions of three upserts and three reads on
other collections, as the services do. Measured: the longest any writer waited for a
transaction while the drop ran, and the writers' rate during it against their rate just
before. Side by side on two fresh stores: the collection's own `drop`, and `drop_in_pieces`
(what `ProjectionStore.drop_generation` uses)."""

from __future__ import annotations

import os
import random
import threading
import time

import pymongo
from pymongo.errors import PyMongoError

from shared.mongo import drop_in_pieces

from .common import Report
from .store import _Store

DOCS = int(os.environ.get("BENCH_DROP_DOCS", "30000"))
WRITERS = 32
WARM = 10.0  # seconds of writers alone before the drop (their rate before)
# a drop still running after this long is given up on and its store stopped: as shipped, one
# sat for good with WiredTiger asleep in `__wt_page_in_func` (bench/README.md, gaps)
GIVE_UP = float(os.environ.get("BENCH_DROP_GIVE_UP", "180"))


def _writer(db, n: int, stop: threading.Event, stamps: list[float]) -> None:
    live = db[f"live{n % 4}"]
    client = db.client
    while not stop.is_set():

        def txn(s) -> None:
            for _ in range(3):
                live.update_one(
                    {"_id": random.randrange(2000)},
                    {"$inc": {"n": 1}, "$set": {"pad": "y" * 300}},
                    upsert=True,
                    session=s,
                )
                live.find_one({"_id": random.randrange(2000)}, session=s)

        try:
            with client.start_session() as s:
                s.with_transaction(txn)
            stamps.append(time.monotonic())
        except Exception:  # a conflict given up on: the next one goes on
            time.sleep(0.01)


def _measure(pieces: bool) -> dict[str, float]:
    store = _Store(as_shipped=False)
    try:
        db = store.client["bench_drop"]
        big = db["retired"]
        big.create_index([("client_id", 1), ("starts_at", -1)])
        big.create_index("therapist_id")
        big.create_index("k", unique=True)
        for start in range(0, DOCS, 1000):
            big.insert_many(
                [
                    {
                        "_id": f"d{j}",
                        "client_id": f"c{j % 500}",
                        "therapist_id": f"t{j % 7}",
                        "k": j,
                        "starts_at": j,
                        "pad": "x" * 400,
                    }
                    for j in range(start, min(DOCS, start + 1000))
                ]
            )
        stop, stamps = threading.Event(), []
        threads = [
            threading.Thread(target=_writer, args=(db, n, stop, stamps), daemon=True)
            for n in range(WRITERS)
        ]
        for t in threads:
            t.start()
        time.sleep(WARM)
        t0 = time.monotonic()
        before = sum(1 for s in stamps if t0 - WARM / 2 <= s < t0) / (WARM / 2)
        finished = True
        try:
            with pymongo.timeout(GIVE_UP):
                if pieces:
                    drop_in_pieces(big)
                else:
                    big.drop()
        except PyMongoError:
            finished = False
        t1 = time.monotonic()
        stop.set()
        deadline = time.monotonic() + 30  # writers stuck on a wedged store are left (daemons)
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        during = sorted(s for s in stamps if t0 <= s <= t1)
        edges = [t0, *during, t1]
        return {
            "seconds": t1 - t0,
            "longest wait": max(b - a for a, b in zip(edges, edges[1:], strict=False)),
            "rate during": len(during) / (t1 - t0),
            "rate before": before,
            "finished": finished,
        }
    finally:
        store.stop()


def _note(figures: dict) -> str:
    return "" if figures["finished"] else f"did not finish: given up after {GIVE_UP:.0f} s"


def run(report: Report) -> None:
    plain, pieces = _measure(pieces=False), _measure(pieces=True)
    report.add(
        "drop: longest writer wait, in pieces",
        pieces["longest wait"],
        "s",
        "the same, collection.drop()",
        plain["longest wait"],
        note=_note(plain) or _note(pieces),
    )
    report.add(
        "drop: writers' txns/s during, in pieces",
        pieces["rate during"],
        "/s",
        "their rate just before",
        pieces["rate before"],
        note=_note(pieces),
    )
    report.add(
        "drop: writers' txns/s during, drop()",
        plain["rate during"],
        "/s",
        "their rate just before",
        plain["rate before"],
        note=_note(plain),
    )
    report.add(
        "drop: time to drop, in pieces",
        pieces["seconds"],
        "s",
        "collection.drop()",
        plain["seconds"],
        note=f"{DOCS} documents, {WRITERS} writers",
    )
