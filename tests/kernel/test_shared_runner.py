"""Several projections of one service applied by one runner (shared.consumer.runner_groups):
one consumer, one transaction per batch for all of them (shared.projections.apply_together),
each projection with its own offsets, positions and generation (issue 14)."""

from __future__ import annotations

import pymongo
from pymongo import IndexModel

from shared.consumer import ProjectionRunner, rebuild, runner_groups
from shared.outbox import message_from_document
from shared.projections import (
    HANDLED,
    Projection,
    ProjectionStore,
    Record,
    apply_together,
    snapshot,
)
from testkit.kernel import Commands, Totals, reg
from testkit.plugin import eventually, running

from .test_consumer import append_counters, expected_totals, setup


class Counts(Projection):
    """Per stream, how many events it has (a second projection of the kernel's topic)."""

    service = "kernel"
    name = "counts"
    batched = True
    sources = ("kernel",)
    collections = {"counts": [IndexModel("n")]}

    def handle(self, event, view):
        view["counts"].update_one({"_id": event.stream_id}, {"$inc": {"n": 1}}, upsert=True)


class BrokenCounts(Counts):
    """Counts with a handler bug on one event."""

    name = "broken_counts"
    collections = {"broken_counts": [IndexModel("n")]}

    def handle(self, event, view):
        if event.stream_id == "c-1" and event.stream_version == 3:
            raise RuntimeError("bug in the handler")
        view["broken_counts"].update_one({"_id": event.stream_id}, {"$inc": {"n": 1}}, upsert=True)


def expected_counts(store):
    out: dict[str, int] = {}
    for event in store.read_all():
        out[event.stream_id] = out.get(event.stream_id, 0) + 1
    return [{"_id": k, "n": v} for k, v in sorted(out.items())]


def test_the_projections_that_apply_at_once_share_a_runner_and_lingering_ones_keep_theirs():
    def made(name, linger=0.0, urgent=frozenset()):
        return type(name, (Counts,), {"name": name, "linger": linger, "urgent": urgent})()

    prompt, handled, lingering, also = (
        made("prompt"),
        made("handled", 0.5, HANDLED),
        made("lingering", 0.5),
        made("also", 0.5),
    )
    slower, laned = made("slower", 0.25), made("laned", 0.5, frozenset({"CounterOpened"}))
    groups = runner_groups([prompt, lingering, handled, slower, laned, also])
    assert [[p.name for p in g] for g in groups] == [
        ["prompt", "handled"],
        ["lingering", "also"],
        ["slower"],
        ["laned"],  # an urgent lane stays its own
    ]


def test_projections_sharing_a_runner_apply_each_event_once_from_their_own_offsets(settings):
    """Totals has read the first events alone; Counts joins it later. The shared consumer
    reads from Counts' offsets (the start), and Totals is given only what it has not applied."""
    store, _, relay = setup(settings)
    append_counters(store, streams=4, increments=5)  # 24 events
    relay.drain()
    alone = ProjectionRunner(settings, Totals(), registry=reg)
    with running(alone.run):
        eventually(lambda: alone.applied_total == 24)
    append_counters(store, streams=4, increments=3, start=100)  # 12 more
    relay.drain()
    shared = ProjectionRunner(settings, [Totals(), Counts()], registry=reg, status_interval=0.2)
    totals, counts = shared.stores
    with running(shared.run):
        eventually(
            lambda: (
                snapshot(totals.reader("totals")) == expected_totals(store)
                and snapshot(counts.reader("counts")) == expected_counts(store)
            ),
            message="both projections caught up",
        )
        eventually(
            lambda: totals.db["worker_status"].count_documents({"runner": "totals+counts"}) == 2,
            message="a status per projection",
        )
    # Totals applied the 12 new events, Counts all 36: nothing twice
    assert shared.applied_total == 12 + 36
    assert totals.stored_offsets(1) == counts.stored_offsets(1)
    assert sum(counts.stored_offsets(1).values()) == 36
    status = {
        d["projection"]: d for d in totals.db["worker_status"].find({"runner": "totals+counts"})
    }
    assert set(status) == {"totals", "counts"}
    assert all(sum(d["lag"].values()) == 0 for d in status.values())
    assert shared.group.endswith("kernel.totals+counts")


def test_a_batch_of_two_projections_is_one_transaction_and_one_write_command(settings):
    store, _, _ = setup(settings)
    append_counters(store, streams=3, increments=9)  # 30 events
    docs = list(store.events.find().sort("position", 1))
    records = [Record("t", 0, i, message_from_document(d)) for i, d in enumerate(docs)]
    listener = Commands()
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[listener])
    try:
        totals = ProjectionStore(mongo, settings.database("kernel"), Totals(), reg)
        counts = ProjectionStore(mongo, settings.database("kernel"), Counts(), reg)
        parts = [(s, records, s.active_generation()) for s in (totals, counts)]
        listener.names.clear()
        assert apply_together(parts) == 60
        sent = [n for n in listener.names if n not in ("find", "hello", "isMaster", "ping")]
        assert sent == ["bulkWrite", "commitTransaction"], listener.names
        assert snapshot(totals.reader("totals")) == expected_totals(store)
        assert snapshot(counts.reader("counts")) == expected_counts(store)
        assert apply_together(parts) == 0, "delivered again: nothing applied twice"
        assert snapshot(counts.reader("counts")) == expected_counts(store)
    finally:
        mongo.close()


def test_a_handler_bug_in_one_projection_of_a_runner_parks_its_event_only(settings):
    store, _, relay = setup(settings)
    append_counters(store, streams=3, increments=3)  # 12 events
    relay.drain()
    runner = ProjectionRunner(settings, [Totals(), BrokenCounts()], registry=reg)
    totals, broken = runner.stores
    with running(runner.run):
        eventually(lambda: runner.applied_total == 12 + 11)
    assert snapshot(totals.reader("totals")) == expected_totals(store)
    parked = list(broken.dead_letters.find({"projection": "broken_counts"}))
    assert len(parked) == 1 and "bug in the handler" in parked[0]["error"]
    assert broken.dead_letters.count_documents({"projection": "totals"}) == 0
    counted = {d["_id"]: d["n"] for d in snapshot(broken.reader("broken_counts"))}
    assert counted == {"c-0": 4, "c-1": 3, "c-2": 4}
    assert broken.stored_offsets(1) == totals.stored_offsets(1), "both read past it"


def test_a_rebuild_of_one_projection_of_a_shared_runner_is_followed_without_losing_events(
    settings,
):
    store, _, relay = setup(settings)
    append_counters(store, streams=4, increments=4)
    relay.drain()
    runner = ProjectionRunner(settings, [Totals(), Counts()], registry=reg)
    totals, counts = runner.stores
    with running(runner.run):
        eventually(lambda: runner.applied_total == 2 * 20)
        assert rebuild(settings, Counts(), registry=reg) == 2
        append_counters(store, streams=4, increments=2, start=50)  # after the swap
        relay.drain()
        eventually(
            lambda: (
                snapshot(counts.reader("counts")) == expected_counts(store)
                and snapshot(totals.reader("totals")) == expected_totals(store)
            ),
            message="the runner followed the swap and applied what came after it",
        )
        eventually(lambda: runner.generations == [1, 2])
    assert totals.active_generation() == 1


class Openings(Projection):
    """The counters opened: it handles one type of the topic (urgent = HANDLED)."""

    service = "kernel"
    name = "openings"
    batched = True
    sources = ("kernel",)
    collections = {"openings": []}
    linger, urgent = 2.0, HANDLED

    def on_CounterOpened(self, event, view):
        view["openings"].update_one(
            {"_id": event.stream_id}, {"$set": {"name": event.data["name"]}}, upsert=True
        )


def test_a_projection_handling_few_types_writes_its_offsets_with_what_it_handles_or_late(
    settings,
):
    """Beside a prompt projection, one whose urgent types are those it handles holds back the
    records it ignores: its offsets and positions are written with the next event it handles,
    or once its linger has passed, not in every batch. Held back records are not lost when the
    runner stops: it reads them again from its stored offsets."""
    store, _, relay = setup(settings)

    def runner():
        return ProjectionRunner(settings, [Totals(), Openings()], registry=reg)

    first = runner()
    totals, openings = first.stores
    with running(first.run):
        append_counters(store, streams=2, increments=3)  # opened: applied at once by both
        relay.drain()
        eventually(lambda: openings.stored_offsets(1) == totals.stored_offsets(1) != {})
        assert {d["_id"] for d in snapshot(openings.reader("openings"))} == {"c-0", "c-1"}
        append_counters(store, streams=2, increments=2, start=10)  # increments only
        relay.drain()
        eventually(lambda: snapshot(totals.reader("totals")) == expected_totals(store))
        held_back = openings.stored_offsets(1)
        assert sum(held_back.values()) == 8 < sum(totals.stored_offsets(1).values()) == 12
    # stopped while holding them back: read again by the next runner, applied once
    assert sum(openings.stored_offsets(1).values()) == 8
    second = runner()
    with running(second.run):
        eventually(
            lambda: openings.stored_offsets(1) == totals.stored_offsets(1),
            timeout=15,
            message="the ignored events' offsets written once the linger passed",
        )
    assert snapshot(totals.reader("totals")) == expected_totals(store)
    assert second.applied_total == 4, "the restarted runner gave Openings only what it held back"
