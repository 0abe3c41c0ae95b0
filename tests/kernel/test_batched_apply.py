"""A consumer batch goes to the store as a few bulk writes in one transaction, not one write
per event (issue 14), and stays exactly-once: the same batch again changes nothing."""

from __future__ import annotations

import pymongo
import pytest

from shared import combine
from shared.outbox import message_from_document
from shared.projections import ProjectionStore, Record, snapshot
from testkit.kernel import Commands, Totals, reg

from .test_consumer import append_counters, expected_totals, setup


@pytest.mark.parametrize(
    "together,most,one_command",
    [(True, 1000, True), (False, 1000, False), (True, combine.TOGETHER_MAX, False)],
    ids=["bulkWrite", "per-collection", "over-TOGETHER_MAX"],
)
def test_a_batch_of_300_events_is_a_handful_of_commands_and_a_redelivery_changes_nothing(
    settings, monkeypatch, together, most, one_command
):
    """On a server with MongoDB 8.0's `bulkWrite` (the local store) the batch's writes to
    its four collections are one command; without it (MongoDB 7.0), or when they are more
    than TOGETHER_MAX writes (the local store applies a bulkWrite's writes one by one, and
    a rebuild's inserts as one statement), one bulk per collection."""
    monkeypatch.setattr(combine, "together", together)
    monkeypatch.setattr(combine, "TOGETHER_MAX", most)
    store, _, _ = setup(settings)
    append_counters(store, streams=6, increments=49)  # 300 events
    docs = list(store.events.find().sort("position", 1))
    records = [
        Record("t", d["position"] % 3, d["position"], message_from_document(d)) for d in docs
    ]
    listener = Commands()
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[listener])
    try:
        pstore = ProjectionStore(mongo, settings.database("kernel"), Totals(), reg)
        generation = pstore.active_generation()
        listener.names.clear()
        listener.commands.clear()
        assert pstore.apply(records, generation) == 300
        writes = [n for n in listener.names if n in ("update", "insert", "delete", "bulkWrite")]
        # was 300 updates (one per event) + offsets one by one; then one bulk per collection;
        # now one command for all where the server has it
        kinds = ("update", "insert", "delete")
        if one_command:
            assert writes == ["bulkWrite"], listener.names
            (bulk,) = [c for c in listener.commands if "bulkWrite" in c]
            written = [ns["ns"].split(".", 1)[1] for ns in bulk["nsInfo"]]
        else:
            assert len(writes) <= 5, listener.names
            written = [c[k] for c in listener.commands for k in kinds if k in c]
        # the projection's writes, the positions seen, the ids of events the positions cannot
        # tell (the records start mid-topic) and the offsets, which carry the newest event's
        # recording time: no write of the generation's progress of its own
        assert sorted(written) == [
            "projection_offsets",
            "projection_processed",
            "projection_progress",
            "totals__g1",
        ]
        newest = max(store.read_all(), key=lambda e: e.recorded_at).recorded_at
        assert (
            abs(pstore.progress(generation)["last_event_recorded_at"] - newest).total_seconds()
            < 0.001
        )
        assert snapshot(pstore.reader("totals")) == expected_totals(store)
        assert pstore.apply(records, generation) == 0  # delivered again: nothing applied twice
        assert snapshot(pstore.reader("totals")) == expected_totals(store)
        assert pstore.stored_offsets(generation) == {
            ("t", p): max(r.offset for r in records if r.partition == p) + 1 for p in range(3)
        }
    finally:
        mongo.close()


class Checked(Totals):
    """Totals, plus a check per stream written once per batch from the batch's final state
    (View.once), as measures recomputes a course's outcome."""

    name = "checked"
    collections = {**Totals.collections, "checks": []}

    def __init__(self):
        self.calls: list[str] = []

    def on_CounterIncremented(self, event, view):
        super().on_CounterIncremented(event, view)
        stream = event.stream_id
        view.once(("check", stream), lambda: self._check(view, stream))

    def _check(self, view, stream):
        self.calls.append(stream)
        total = view["totals"].find_one({"_id": stream})  # reads the batch's writes
        view["checks"].update_one(
            {"_id": stream}, {"$set": {"sum_seen": total["sum"]}}, upsert=True
        )


def test_work_asked_once_per_key_runs_once_per_batch_on_its_final_state(settings):
    store, _, _ = setup(settings)
    append_counters(store, streams=6, increments=49)  # 300 events, 294 increments
    docs = list(store.events.find().sort("position", 1))
    records = [
        Record("t", d["position"] % 3, d["position"], message_from_document(d)) for d in docs
    ]
    projection = Checked()
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True)
    try:
        pstore = ProjectionStore(mongo, settings.database("kernel"), projection, reg)
        assert pstore.apply(records, pstore.active_generation()) == 300
        assert sorted(projection.calls) == sorted(f"c-{s}" for s in range(6))  # not 294
        totals = {d["_id"]: d["sum"] for d in snapshot(pstore.reader("totals"))}
        checks = {d["_id"]: d["sum_seen"] for d in snapshot(pstore.reader("checks"))}
        assert checks == totals
    finally:
        mongo.close()


def test_a_read_in_a_batch_sends_first_only_the_writes_to_its_collection(settings):
    """A handler's read sees the batch's writes to the collection it reads; the writes to
    the others wait for the batch's last command (issue 14: a course read after a score's
    response was written cost a round trip of its own). An aggregation naming another
    collection sends them all first."""
    from shared.mongo import in_transaction
    from shared.projections import View

    listener = Commands()
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[listener])
    try:
        pstore = ProjectionStore(mongo, settings.database("kernel"), Checked(), reg)
        generation = pstore.active_generation()
        totals = pstore.physical("totals", generation).name
        checks = pstore.physical("checks", generation).name
        seen = {}

        def work(session):
            view = View(pstore, generation, session)
            view["totals"].update_one({"_id": "a"}, {"$set": {"sum": 1}}, upsert=True)
            view["checks"].update_one({"_id": "a"}, {"$set": {"sum_seen": 1}}, upsert=True)
            listener.commands.clear()
            seen["totals"] = view["totals"].find_one({"_id": "a"})
            seen["first"] = [dict(c) for c in listener.commands]
            listener.commands.clear()
            joined = {"from": checks, "localField": "_id", "foreignField": "_id", "as": "c"}
            list(view["totals"].aggregate([{"$match": {"_id": "a"}}, {"$lookup": joined}]))
            seen["second"] = [dict(c) for c in listener.commands]
            view.finish()

        in_transaction(mongo, work)
        assert seen["totals"] == {"_id": "a", "sum": 1}
        first = [(next(iter(c)), c.get(next(iter(c)))) for c in seen["first"]]
        assert first == [("update", totals), ("find", totals)], first  # not the check yet
        second = [(next(iter(c)), c.get(next(iter(c)))) for c in seen["second"]]
        assert second[0] == ("update", checks), second
        assert pstore.reader("checks").find_one({"_id": "a"}) == {"_id": "a", "sum_seen": 1}
    finally:
        mongo.close()
