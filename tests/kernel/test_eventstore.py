"""Event store against the real local MongoDB-wire server."""

import threading

import pytest
from pymongo.errors import DuplicateKeyError

from shared.events import NewEvent
from shared.eventstore import ConcurrencyError, StreamAppend
from testkit.kernel import META, kernel_store

OPEN = NewEvent("CounterOpened", {"name": "a"})


def inc(n=1):
    return NewEvent("CounterIncremented", {"by": n, "reason": "test"})


def test_append_and_read_a_stream(settings):
    store = kernel_store(settings)
    store.append("c-1", 0, [OPEN, inc(2)], META)
    store.append("c-1", 2, [inc(3)], META)
    events = store.load("c-1")
    assert [e.stream_version for e in events] == [1, 2, 3]
    assert [e.type for e in events] == ["CounterOpened", "CounterIncremented", "CounterIncremented"]
    assert events[2].data == {"by": 3, "reason": "test"}
    assert events[0].actor.id == "tester" and events[0].correlation_id == "corr-1"
    assert store.stream_version("c-1") == 3


def test_several_streams_load_in_one_query_each_in_version_order(settings):
    store = kernel_store(settings)
    store.append("c-1", 0, [OPEN, inc(2)], META)
    store.append("c-2", 0, [OPEN], META)
    store.append("c-1", 2, [inc(3)], META)
    loaded = store.load_many(["c-1", "c-2", "c-none"])
    assert {sid: [e.stream_version for e in evts] for sid, evts in loaded.items()} == {
        "c-1": [1, 2, 3],
        "c-2": [1],
        "c-none": [],
    }
    assert [e.data for e in loaded["c-1"]] == [e.data for e in store.load("c-1")]


def test_wrong_expected_version_is_a_conflict_and_writes_nothing(settings):
    store = kernel_store(settings)
    store.append("c-1", 0, [OPEN], META)
    with pytest.raises(ConcurrencyError):
        store.append("c-1", 0, [inc()], META)
    assert store.stream_version("c-1") == 1


def test_two_concurrent_appends_at_one_version_exactly_one_wins(settings):
    store = kernel_store(settings)
    store.append("c-race", 0, [OPEN], META)
    barrier = threading.Barrier(8)
    outcomes = []

    def attempt(i):
        barrier.wait()
        try:
            store.append("c-race", 1, [inc(i)], META)
            outcomes.append("won")
        except ConcurrencyError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1, outcomes
    assert outcomes.count("conflict") == 7
    assert store.stream_version("c-race") == 2


def test_events_of_one_command_are_atomic_across_streams(settings):
    store = kernel_store(settings)
    store.append("c-2", 0, [OPEN], META)
    with pytest.raises(ConcurrencyError):
        store.append_streams(
            [StreamAppend("c-new", 0, [OPEN, inc()]), StreamAppend("c-2", 0, [inc()])], META
        )  # c-2 is at 1
    assert store.load("c-new") == []
    assert store.stream_version("c-2") == 1


def test_an_append_s_events_may_carry_their_own_metadata_one_each(settings):
    """Several commands recorded in one transaction keep each its cause: a stream's events
    with one metadata of their own, or one per event; a count that does not match is refused
    before anything is written."""
    from dataclasses import replace

    store = kernel_store(settings)
    first, second = (replace(META, correlation_id=c, causation_id=f"by-{c}") for c in "xy")
    store.append_streams(
        [
            StreamAppend("c-own", 0, [OPEN, inc()], [first, second]),
            StreamAppend("c-one", 0, [OPEN], second),
            StreamAppend("c-default", 0, [OPEN]),
        ],
        META,
    )
    seen = {
        sid: [(e.correlation_id, e.causation_id) for e in store.load(sid)]
        for sid in ("c-own", "c-one", "c-default")
    }
    assert seen == {
        "c-own": [("x", "by-x"), ("y", "by-y")],
        "c-one": [("y", "by-y")],
        "c-default": [("corr-1", None)],
    }
    with pytest.raises(ValueError, match="1 metadata for 2 events"):
        store.append_streams([StreamAppend("c-odd", 0, [OPEN, inc()], [first])], META)
    assert store.load("c-odd") == []


def test_extra_write_failing_rolls_back_the_events(settings):
    store = kernel_store(settings)

    def claim(session):
        store.db["claims"].insert_one({"_id": "slot"}, session=session)

    store.append("c-3", 0, [OPEN], META, also=claim)
    with pytest.raises(DuplicateKeyError):
        store.append("c-4", 0, [OPEN], META, also=claim)  # duplicate claim
    assert store.load("c-4") == []
    assert store.db["claims"].count_documents({}) == 1


def test_read_all_in_commit_order(settings):
    store = kernel_store(settings)
    for i in range(5):
        store.append(f"s-{i}", 0, [OPEN], META)
        store.append(f"s-{i}", 1, [inc(i)], META)
    events = list(store.read_all(batch_size=3))
    assert [e.position for e in events] == list(range(1, 11))
    assert len({e.event_id for e in events}) == 10
    assert [e.position for e in store.read_all(from_position=8)] == [9, 10]


def test_one_stream_twice_in_one_append_is_refused_before_anything_is_written(settings):
    store = kernel_store(settings)
    opened = NewEvent("CounterOpened", {"name": "a"})
    bumped = NewEvent("CounterIncremented", {"by": 1, "reason": "x"})
    with pytest.raises(ValueError, match="appears twice"):
        store.append_streams(
            [StreamAppend("c-1", 0, [opened]), StreamAppend("c-1", 0, [bumped])], META
        )
    assert store.load("c-1") == [] and store.events.count_documents({}) == 0


def test_read_all_and_pending_step_over_a_skipped_position(settings):
    """Reading goes by position windows (positions are gap-free); were one ever skipped,
    nothing after it may be missed."""
    store = kernel_store(settings)
    for i in range(7):
        store.append(f"c-{i}", 0, [NewEvent("CounterOpened", {"name": str(i)})], META)
    store.events.delete_one({"position": 3})  # a hole, as if position 3 had been skipped
    assert [e.position for e in store.read_all(batch_size=2)] == [1, 2, 4, 5, 6, 7]
    store.mark_published_through(2)
    assert [d["position"] for d in store.pending(limit=3)] == [4, 5]  # the window (2, 5]
    assert [d["position"] for d in store.pending(limit=1)] == [4]  # (2, 3] empty: found beyond
    store.mark_published_through(5)
    assert [d["position"] for d in store.pending(limit=3)] == [6, 7]


def test_an_append_to_a_stream_that_exists_reads_nothing_and_a_stale_version_conflicts(settings):
    """The expected version is checked by the unique (stream, version) index, not by reading
    the stream inside the transaction (one round trip per stream of every command, issue 14):
    an append at the stream's version reads no event; one at a version the stream has moved
    past is a conflict naming that stream, and writes nothing of the command's streams."""
    import pymongo

    from shared.eventstore import EventStore
    from testkit.kernel import Commands, reg

    heard = Commands()
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[heard])
    try:
        store = EventStore(mongo, kernel_store(settings).db.name, reg)
        store.append("c-x", 0, [OPEN], META)
        store.append("c-y", 0, [OPEN], META)
        heard.commands.clear()
        store.append_streams(
            [StreamAppend("c-x", 1, [inc()]), StreamAppend("c-y", 1, [inc()])], META
        )
        assert not [c for c in heard.commands if c.get("find") == "events"], heard.commands
        with pytest.raises(ConcurrencyError) as conflict:
            store.append_streams(
                [StreamAppend("c-y", 2, [inc(5)]), StreamAppend("c-x", 1, [inc(7)])], META
            )  # c-x is at 2
        assert conflict.value.stream_id == "c-x" and conflict.value.expected == 1
        assert [e.stream_version for e in store.load("c-x")] == [1, 2]
        assert [e.stream_version for e in store.load("c-y")] == [1, 2]  # c-y's 3 rolled back
    finally:
        mongo.close()
