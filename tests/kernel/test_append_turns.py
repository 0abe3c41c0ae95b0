"""Appends of several processes of one host to one service's store take turns instead of
meeting on the position counter, aborting and redoing their commands (issue 14: the booking
p99 under two gunicorn workers)."""

from __future__ import annotations

import multiprocessing

import pymongo
from pymongo import monitoring

from shared.events import NewEvent
from shared.eventstore import EventStore
from testkit.kernel import META, reg

PROCESSES, APPENDS, THREADS = 3, 40, 3


class Conflicts(monitoring.CommandListener):
    def __init__(self):
        self.count = 0

    def started(self, event):
        pass

    def succeeded(self, event):
        pass

    def failed(self, event):
        failure = event.failure or {}
        if failure.get("code") == 112 or "TransientTransactionError" in failure.get(
            "errorLabels", []
        ):
            self.count += 1


def _appender(uri: str, database: str, name: str, out) -> None:
    import threading

    listener = Conflicts()
    mongo = pymongo.MongoClient(uri, event_listeners=[listener])
    store = EventStore(mongo, database, reg)

    def work(thread: int) -> None:
        for i in range(APPENDS):
            store.append(
                f"{name}-{thread}-{i}", 0, [NewEvent("CounterOpened", {"name": "x"})], META
            )

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(listener.count)
    mongo.close()


def test_appends_of_several_processes_take_turns_on_the_counter(settings):
    database = settings.database("turns")
    store = EventStore(pymongo.MongoClient(settings.mongo_uri), database, reg)
    store.ensure_indexes()
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = [
        context.Process(target=_appender, args=(settings.mongo_uri, database, f"p{n}", out))
        for n in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    conflicts = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    total = PROCESSES * THREADS * APPENDS
    assert store.events.count_documents({}) == total
    positions = sorted(d["position"] for d in store.events.find({}, {"position": 1}))
    assert positions == list(range(1, total + 1))  # gap-free, each once
    # without the turns between processes: [40, 58, 29] aborted attempts in one run
    assert conflicts == [0] * PROCESSES
