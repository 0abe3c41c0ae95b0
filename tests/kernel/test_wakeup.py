"""Idle loops wait on a change stream (shared.wakeup) instead of polling the store: an idle
relay sends the store almost nothing, and still publishes a new event at once (issue 14:
`make up` doing nothing cost 1.2 cores, mostly the store serving idle polls)."""

from __future__ import annotations

import threading
import time

import pymongo
import pytest

from shared.events import NewEvent
from shared.eventstore import EventStore
from shared.wakeup import Doorbell
from testkit.kernel import META, idle_relay, reg
from testkit.plugin import eventually


@pytest.fixture(autouse=True)
def _change_streams_on(monkeypatch):
    monkeypatch.setenv(
        "RAPPORT_CHANGE_STREAMS", "1"
    )  # opt-in (shared.wakeup.change_streams_enabled)


def test_a_doorbell_rings_on_a_write_and_otherwise_times_out(settings):
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    coll = mongo[settings.database("kernel")]["things"]
    bell = Doorbell(coll)
    try:
        eventually(lambda: bell.watching, timeout=10, message="change stream open")
        ticket = bell.ticket()
        started = time.monotonic()
        assert not bell.wait(ticket, 0.3)
        assert time.monotonic() - started >= 0.3
        threading.Timer(0.2, lambda: coll.insert_one({"x": 1})).start()
        started = time.monotonic()
        assert bell.wait(ticket, 10)
        assert time.monotonic() - started < 2
        ticket = bell.ticket()
        coll.insert_one({"x": 2})  # a change between ticket and wait is not missed
        time.sleep(0.3)
        assert bell.wait(ticket, 0.0) or bell.wait(ticket, 5)
    finally:
        bell.close()
        mongo.close()


def test_an_idle_relay_leaves_the_store_alone_and_still_publishes_at_once(settings):
    with idle_relay(settings) as (store, listener):
        time.sleep(3.0)
        idle = [n for n in listener.names if n not in ("hello", "isMaster", "ismaster", "getMore")]
        waits = [n for n in listener.names if n == "getMore"]
        # polling every 50 ms was ~60 queries a second (142 in these 3 s); now a lease renewal
        # and a look at the outbox every 5 s, and the change stream's getMore, which the store
        # holds for up to a second but answers early when another database is written (other
        # tests' stacks on a shared store): bounded well below polling, not to one a second
        assert len(idle) <= 6, idle
        assert len(waits) <= 45, len(waits)
        appended = time.monotonic()
        store.append("c-2", 0, [NewEvent("CounterOpened", {"name": "two"})], META)
        eventually(
            lambda: store.published_through() == 2,
            timeout=10,
            interval=0.01,
            message="second published",
        )
        assert time.monotonic() - appended < 1.0


def test_a_work_loop_outlives_a_store_outage_and_a_bug_and_reruns_a_busy_step(settings):
    """The services' background workers (billing charges, measures reactor, records' course
    completer, scheduling's discharge canceller) all run in shared.wakeup.work_loop."""
    from pymongo.errors import AutoReconnect

    from shared.wakeup import work_loop

    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    store = EventStore(mongo, settings.database("kernel"), reg)
    answers = [AutoReconnect("store gone"), RuntimeError("a bug"), 3, 0]
    calls: list[float] = []
    stop = threading.Event()

    def step():
        calls.append(time.monotonic())
        answer = answers[len(calls) - 1] if len(calls) <= len(answers) else 0
        if isinstance(answer, Exception):
            raise answer
        if len(calls) >= len(answers):
            stop.set()
        return answer

    thread = threading.Thread(
        target=work_loop,
        args=(store, step, stop),
        kwargs={"name": "test loop", "interval": 1.0, "idle_rest": 1.0},
    )
    thread.start()
    thread.join(timeout=10)
    mongo.close()
    assert not thread.is_alive()
    assert len(calls) == 4  # an outage, a bug, work done (run again at once), nothing left
    assert calls[3] - calls[2] < 0.5  # busy: run again without the rest of 1 s


def test_a_projection_batch_rings_the_projections_bell_by_change_stream(settings, monkeypatch):
    """Without chimes (services on several hosts), loops acting on what projections wrote
    wake on the change stream: every applied batch writes its offsets, which the bell
    watches (the generation's progress document is no longer written per batch)."""
    from shared import chime
    from shared.outbox import message_from_document
    from shared.projections import ProjectionStore, Record
    from shared.wakeup import projections_bell
    from testkit.kernel import Totals, kernel_store

    monkeypatch.setattr(chime, "listen", lambda: False)
    events = kernel_store(settings)
    events.append("c-1", 0, [NewEvent("CounterOpened", {"name": "c-1"})], META)
    doc = events.events.find_one({"stream_id": "c-1"})
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    store = ProjectionStore(mongo, settings.database("kernel"), Totals(), reg)
    generation = store.active_generation()
    bell = projections_bell(mongo, store.db.name, name="test")
    try:
        eventually(lambda: bell.watching, timeout=10, message="change stream open")
        ticket = bell.ticket()
        assert not bell.wait(ticket, 0.3)
        record = Record("t.rapport.kernel", 0, 0, message_from_document(doc))
        assert store.apply([record], generation) == 1
        assert bell.wait(ticket, 10)
    finally:
        bell.close()
        mongo.close()
