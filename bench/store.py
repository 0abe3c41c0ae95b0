"""The local store as it ages: transactions and reads on a store that has seen many sessions.

SecantusDB as shipped walks its registries of sessions on every command, and its registry of
transactions never shrinks, so every session a driver has ever made slows every later
command (deploy/local/store.py). This section starts two stores of its own, side by side on
free ports: SecantusDB's own `secantusd-py` and `deploy/local/store.py`, with the flags
`make up` uses. On each it measures, from one client, transactions of one update (with their
commit) and `find_one` by `_id`, first fresh and again after `BENCH_STORE_SESSIONS` sessions
(6000 unless told) have each run a transaction and ended `FINISHED_KEPT` seconds before (the
launcher is told to forget finished transactions after those seconds instead of 300, so
sessions aged in a minute stand for sessions aged over days). Ratios: each store aged
against itself fresh, and the launcher against the store as shipped, aged. Fresh, it also
measures the store's own CPU per statement in a collection shaped as notifications' message
book (`statement_cpu`: the launcher rewrites only the index entries an update changed, and
writes no oplog until a change stream is opened)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymongo
from pymongo import UpdateOne

from deploy.local.infra import port_open, store_command
from services.notifications.application.book import INDEXES as MESSAGE_INDEXES
from testkit.procs import free_port

from .common import Report, cpu_seconds

MESSAGES, STATEMENTS = 3000, 1200  # the message book's size, and statements of each shape


def _message(i: int, now: datetime) -> dict:
    """A message as notifications' planner writes it (services/notifications/application)."""
    return {
        "_id": i,
        "kind": "confirmation",
        "channel": "email",
        "recipient": "client",
        "client_id": f"c{i % 50}",
        "therapist_id": f"t{i % 6}",
        "session_id": f"s{i}",
        "priority": i % 3,
        "next_at": now - timedelta(seconds=i),
        "due_at": now,
        "status": "pending",
        "attempts": 0,
        "announced": False,
        "as_of": now,
        "created_at": now,
        "last_error": None,
        "context": {"starts_at": now, "modality": "video", "therapist_name": "Dr A Example"},
    }


SESSIONS = int(os.environ.get("BENCH_STORE_SESSIONS", "6000"))
ROUNDS = 600  # transactions (and find_one calls) per measurement
BLOCK = 500  # sessions held open at once, so the driver's pool cannot hand one out twice
# the launcher forgets a finished transaction this long after it (300 s in `make up`), and the
# section waits that long after aging: the sessions stand for ones that ended long ago
FINISHED_KEPT = 5.0


class _Store:
    def __init__(self, as_shipped: bool):
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="rapport-bench-store-"))
        self.log = open(self.home / "store.log", "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            store_command(self.port, self.home / "data", as_shipped=as_shipped),
            env={**os.environ, "RAPPORT_STORE_FINISHED_KEPT": str(FINISHED_KEPT)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.home,
        )
        deadline = time.monotonic() + 60
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench store did not start; see {self.home / 'store.log'}")
            time.sleep(0.1)
        uri = f"mongodb://127.0.0.1:{self.port}/?directConnection=true&retryWrites=false"
        self.client = pymongo.MongoClient(uri)
        self.coll = self.client["bench_store"]["t"]
        self.coll.insert_many([{"_id": i, "n": 0} for i in range(50)])
        self.aged = 0

    def rates(self) -> tuple[float, float]:
        """(transactions/s, find_one/s) from one client."""
        coll = self.coll
        started = time.perf_counter()
        for i in range(ROUNDS):
            with self.client.start_session() as s:
                s.with_transaction(
                    lambda s, k=i % 50: coll.update_one({"_id": k}, {"$inc": {"n": 1}}, session=s)
                )
        txn = ROUNDS / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(ROUNDS):
            coll.find_one({"_id": i % 50})
        return txn, ROUNDS / (time.perf_counter() - started)

    def statement_cpu(self) -> dict[str, float]:
        """The store's CPU (ms) per statement in a collection shaped as notifications' message
        book (its ten secondary indexes, MESSAGES documents), each statement in bulk writes of
        24 as the dispatcher sends them: an update of one indexed field, a claim (its status,
        in six of the indexes, and a lease), and an insert."""
        coll = self.client["bench_store"]["messages"]
        coll.create_indexes(MESSAGE_INDEXES["messages"])
        now = datetime.now(UTC)
        coll.insert_many([_message(i, now) for i in range(MESSAGES)])
        ids = list(range(MESSAGES))
        random.Random(14).shuffle(ids)
        claim = {"$set": {"status": "sending", "lease_until": now, "claimed_at": now}}
        shapes = {
            "update of 'announced'": lambda i: UpdateOne({"_id": i}, {"$set": {"announced": True}}),
            "claim": lambda i: UpdateOne({"_id": i, "status": "pending"}, claim),
        }
        spent = {}
        for name, op in shapes.items():
            started = cpu_seconds(self.proc.pid)
            for j in range(0, STATEMENTS, 24):
                coll.bulk_write([op(i) for i in ids[j : j + 24]], ordered=False)
            spent[name] = (cpu_seconds(self.proc.pid) - started) / STATEMENTS * 1000
        more = [_message(MESSAGES + i, now) for i in range(STATEMENTS)]
        started = cpu_seconds(self.proc.pid)
        for j in range(0, STATEMENTS, 24):
            coll.insert_many(more[j : j + 24])
        spent["insert"] = (cpu_seconds(self.proc.pid) - started) / STATEMENTS * 1000
        return spent

    def age(self, sessions: int) -> None:
        """`sessions` new sessions, each running one transaction, then dropped by the driver
        without ending them: as processes that stop, and pooled sessions gone stale, leave
        them."""
        while self.aged < sessions:
            block = [self.client.start_session() for _ in range(min(BLOCK, sessions - self.aged))]
            for s in block:
                s.with_transaction(lambda s: self.coll.find_one({"_id": 0}, session=s))
            for s in block:
                s.end_session()
            self.client._topology._session_pool.clear()  # new ids from here on
            self.aged += len(block)
        time.sleep(FINISHED_KEPT + 1)  # they ended long ago, as far as the launcher knows

    def stop(self) -> None:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.home, ignore_errors=True)


def run(report: Report) -> None:
    figures, statements = {}, {}
    for name, as_shipped in (("as shipped", True), ("launcher", False)):
        store = _Store(as_shipped)
        try:
            fresh = store.rates()
            statements[name] = store.statement_cpu()
            store.age(SESSIONS)
            figures[name] = (fresh, store.rates())
        finally:
            store.stop()
    for what in statements["launcher"]:
        report.add(
            f"store CPU per {what}, message book: launcher",
            statements["launcher"][what],
            "ms",
            "the store as shipped",
            statements["as shipped"][what],
        )
    for i, what in enumerate(("txn of 1 update", "find_one by _id")):
        for name in ("launcher", "as shipped"):
            fresh, aged = figures[name]
            report.add(
                f"{what}, {name}, {SESSIONS} sessions on",
                aged[i],
                "/s",
                "the same store fresh",
                fresh[i],
            )
        report.add(
            f"{what}, {SESSIONS} sessions on: launcher",
            figures["launcher"][1][i],
            "/s",
            "the store as shipped, as aged",
            figures["as shipped"][1][i],
        )
