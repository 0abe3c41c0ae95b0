"""Appends that wait for their turn on one service's store go in one transaction, each as if
alone: its own checks, its own errors, its own caller's context (issue 14: one transaction
after another held a service to about fifteen appends a second under load)."""

from __future__ import annotations

import contextvars
import threading
import time

import pymongo
from flask import Flask, g

from shared.events import NewEvent
from shared.eventstore import ConcurrencyError, EventStore, _append_lock
from testkit.kernel import META, Commands, reg

OPEN = NewEvent("CounterOpened", {"name": "a"})
WHO = contextvars.ContextVar("who", default="nobody")


def _store(settings, listener: Commands | None = None) -> EventStore:
    mongo = pymongo.MongoClient(settings.mongo_uri, event_listeners=[listener] if listener else [])
    store = EventStore(mongo, settings.database("kernel"), reg)
    store.ensure_indexes()
    return store


class Held:
    """An append whose other writes wait until released: while it holds the turn, the
    appends started meanwhile all wait, and go together once it is done."""

    def __init__(self, store: EventStore):
        self.entered, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(
            target=lambda: store.append("held", 0, [OPEN], META, also=self._wait)
        )

    def _wait(self, session) -> None:
        self.entered.set()
        assert self.release.wait(30)

    def __enter__(self) -> Held:
        self.thread.start()
        assert self.entered.wait(30)
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.thread.join(30)


def _waiting(store: EventStore, n: int) -> None:
    turns = _append_lock(store.db.name)
    deadline = time.monotonic() + 30
    while len(turns._waiting) < n:
        assert time.monotonic() < deadline, f"{len(turns._waiting)} of {n} appends waiting"
        time.sleep(0.01)


def _start(target, *args) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["events"] = target(*args)
        except Exception as err:
            out["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_appends_waiting_together_go_in_one_transaction(settings):
    listener = Commands()
    store = _store(settings, listener)
    with Held(store):
        started = [_start(store.append, f"s-{i}", 0, [OPEN], META) for i in range(5)]
        _waiting(store, 5)
        listener.names.clear()
    for thread, _ in started:
        thread.join(30)
    # the held append's counter, insert and commit, then the same three for all five (one
    # by one, they were six of each)
    for name in ("findAndModify", "insert", "commitTransaction"):
        assert listener.names.count(name) == 2, name
    got = [out["events"] for _, out in started]
    assert [[(e.stream_id, e.stream_version) for e in evts] for evts in got] == [
        [(f"s-{i}", 1)] for i in range(5)
    ]
    positions = sorted(d["position"] for d in store.events.find({}, {"position": 1}))
    assert positions == list(range(1, 7))  # gap-free, each once
    assert sorted(e.position for evts in got for e in evts) == list(range(2, 7))


def test_an_append_that_fails_in_a_transaction_together_fails_alone(settings):
    store = _store(settings)
    store.append("taken", 0, [OPEN], META)

    def refuse(session) -> None:
        raise ValueError("refused by the command's other write")

    with Held(store):
        first = _start(store.append, "first", 0, [OPEN], META)
        _waiting(store, 1)
        stale = _start(store.append, "taken", 0, [OPEN], META)  # the stream is at 1
        _waiting(store, 2)
        refused = _start(lambda: store.append("refused", 0, [OPEN], META, also=refuse))
        _waiting(store, 3)
        last = _start(store.append, "last", 0, [OPEN], META)
        _waiting(store, 4)
    for thread, _ in (first, stale, refused, last):
        thread.join(30)
    assert isinstance(stale[1]["error"], ConcurrencyError)
    assert stale[1]["error"].stream_id == "taken"
    assert isinstance(refused[1]["error"], ValueError)
    assert [e.stream_id for e in first[1]["events"]] == ["first"]
    assert [e.stream_id for e in last[1]["events"]] == ["last"]
    # nothing of the two that failed, and the others' positions without a gap
    assert store.stream_version("taken") == 1 and store.stream_version("refused") == 0
    positions = sorted(d["position"] for d in store.events.find({}, {"position": 1}))
    assert positions == list(range(1, 5))


def test_a_stream_appended_twice_waits_for_the_next_transaction(settings):
    store = _store(settings)
    with Held(store):
        one = _start(store.append, "twice", 0, [OPEN], META)
        _waiting(store, 1)
        two = _start(store.append, "twice", None, [OPEN], META)  # after whatever is there
        _waiting(store, 2)
    for thread, _ in (one, two):
        thread.join(30)
    assert [e.stream_version for e in one[1]["events"]] == [1]
    assert [e.stream_version for e in two[1]["events"]] == [2]


def test_each_append_s_other_writes_run_in_its_own_caller_s_context(settings):
    """A request's idempotency claim reads Flask's `g` in the transaction's other writes;
    whichever thread leads the transaction, each append's writes see its own request."""
    store = _store(settings)
    app = Flask(__name__)
    seen: dict[str, tuple[str, str, str]] = {}

    def append_as(name: str) -> None:
        WHO.set(name)
        with app.app_context():
            g.who = name

            def also(session) -> None:
                seen[name] = (WHO.get(), g.who, threading.current_thread().name)

            store.append(name, 0, [OPEN], META, also=also)

    with Held(store):
        threads = [threading.Thread(target=append_as, args=(n,), name=n) for n in ("b", "c")]
        for i, t in enumerate(threads, start=1):
            t.start()
            _waiting(store, i)
    for t in threads:
        t.join(30)
    assert {n: s[:2] for n, s in seen.items()} == {"b": ("b", "b"), "c": ("c", "c")}
    # they went together, so one of them was run by the other's thread
    assert sorted(s[2] for s in seen.values()) in (["b", "b"], ["c", "c"])


def test_many_threads_appending_lose_nothing_and_leave_no_gap(settings):
    store = _store(settings)
    threads, per = 8, 25

    def work(t: int) -> None:
        for i in range(per):
            store.append(f"t{t}-{i}", 0, [OPEN, OPEN], META)

    running = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join(60)
    positions = sorted(d["position"] for d in store.events.find({}, {"position": 1}))
    assert positions == list(range(1, threads * per * 2 + 1))
    for t in range(threads):
        assert all(store.stream_version(f"t{t}-{i}") == 2 for i in (0, per - 1))
