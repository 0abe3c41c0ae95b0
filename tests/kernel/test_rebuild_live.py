"""A rebuild while the live consumer keeps applying new events (issue 14: rebuilding records'
client summaries under live writes failed with WriteConflict, stuck at 0 of 683, and left
`building: 2` and half-built collections behind)."""

from __future__ import annotations

import threading

import pytest
from kafka import KafkaAdminClient

from shared.consumer import ProjectionRunner, rebuild
from shared.projections import snapshot
from testkit.kernel import Totals, reg
from testkit.plugin import eventually, running

from .test_consumer import append_counters, expected_totals, setup


def test_a_rebuild_under_live_writes_completes_equals_the_live_one_and_leaves_no_debris(settings):
    store, topic, relay = setup(settings)
    append_counters(store, streams=6, increments=30)
    relay.drain()
    runner = ProjectionRunner(settings, Totals(), registry=reg)
    pstore = runner.store
    stop_writing = threading.Event()

    def keep_writing(stop):  # a command every few ms on the same streams, relayed at once
        n = 1000
        while not (stop.is_set() or stop_writing.is_set()):
            append_counters(store, streams=6, increments=1, start=n)
            relay.publish_once()
            n += 1

    with running(runner.run, keep_writing):
        eventually(lambda: pstore.stored_offsets(1), timeout=30, message="live consumer started")
        generation = rebuild(settings, Totals(), registry=reg)
        stop_writing.set()
        assert generation == 2
        eventually(
            lambda: snapshot(pstore.reader("totals")) == expected_totals(store),
            timeout=60,
            message="the rebuilt generation, followed by the live consumer, equals the log",
        )
    meta = pstore.meta.find_one({"_id": pstore.name})
    assert meta["active"] == 2 and meta.get("building") is None, meta
    names = set(pstore.db.list_collection_names())
    assert not any(
        n.startswith("totals__g") and n not in ("totals__g1", "totals__g2") for n in names
    ), names


def test_a_failed_rebuild_leaves_no_half_built_generation(settings):
    store, topic, relay = setup(settings)
    append_counters(store, streams=2, increments=3)
    relay.drain()

    def boom(done, total):
        if done:
            raise RuntimeError("stopped half-way")

    runner = ProjectionRunner(settings, Totals(), registry=reg)
    pstore = runner.store
    assert pstore.active_generation() == 1
    try:
        rebuild(settings, Totals(), registry=reg, progress=boom)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the rebuild should have failed")
    meta = pstore.meta.find_one({"_id": pstore.name})
    assert meta["active"] == 1 and meta.get("building") is None, meta
    assert "totals__g2" not in pstore.db.list_collection_names()
    assert not pstore.stored_offsets(2)


def test_a_rebuild_asked_to_stop_ends_between_batches_and_leaves_nothing_behind(
    settings, monkeypatch
):
    """SIGTERM or Ctrl-C on `python -m shared.run rebuild` sets its stop: the rebuild ends
    after the batch in hand (never inside its transaction), drops its generation and says
    so; the old generation keeps serving. Killed mid-transaction, it left the generation
    half-built and, on the local store, a transaction open (bench/README.md, gaps)."""
    import threading

    from shared.consumer import RebuildStopped

    monkeypatch.setattr("shared.consumer.REBUILD_BATCH", 3)  # several batches of its 14 events
    store, topic, relay = setup(settings)
    append_counters(store, streams=2, increments=3)
    relay.drain()
    stop = threading.Event()
    seen: list[int] = []

    def stop_after_first_batch(done, total):
        seen.append(done)
        if done:
            stop.set()  # as the signal handler does, from another thread

    runner = ProjectionRunner(settings, Totals(), registry=reg)
    pstore = runner.store
    assert pstore.active_generation() == 1
    try:
        rebuild(settings, Totals(), registry=reg, progress=stop_after_first_batch, stop=stop)
    except RebuildStopped:
        pass
    else:
        raise AssertionError("the rebuild should have stopped")
    assert 0 < seen[-1] < 14, seen  # it applied a batch or more, then stopped
    meta = pstore.meta.find_one({"_id": pstore.name})
    assert meta["active"] == 1 and meta.get("building") is None, meta
    assert "totals__g2" not in pstore.db.list_collection_names()
    assert not pstore.stored_offsets(2)


def test_two_rebuilds_at_once_run_one_after_the_other(settings):
    """A disposal sweep beside the service's own disposal worker rebuilt the same projection
    twice at once: the second dropped what the first had written into generation 2, and the
    first then wrote into it while the second was making it, which wedged the local store
    (session 20). The second now waits for the first, then rebuilds from what is active."""
    store, topic, relay = setup(settings)
    append_counters(store, streams=3, increments=4)
    relay.drain()
    pstore = ProjectionRunner(settings, Totals(), registry=reg).store
    assert pstore.active_generation() == 1
    start, built, errors = threading.Barrier(2), [], []

    def one():
        start.wait()
        try:
            built.append(rebuild(settings, Totals(), registry=reg))
        except Exception as err:  # the test says which
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and sorted(built) == [2, 3], (built, errors)
    meta = pstore.meta.find_one({"_id": pstore.name})
    assert meta["active"] == 3 and meta.get("building") is None, meta
    assert meta.get("build_claim") is None, meta  # released
    assert snapshot(pstore.reader("totals")) == expected_totals(store)
    names = {n for n in pstore.db.list_collection_names() if n.startswith("totals__g")}
    assert names == {"totals__g2", "totals__g3"}, names  # one previous kept, g1 dropped


def test_a_stale_claim_is_taken_over_and_the_rebuild_that_lost_it_stops(settings, monkeypatch):
    """A claim not renewed for BUILD_LEASE is a rebuild that died (killed with SIGKILL): the
    next takes the build over. One whose claim was taken stops without touching the
    generation, which is the other's now."""
    from datetime import timedelta

    from shared.consumer import BuildLost
    from shared.events import utcnow

    store, topic, relay = setup(settings)
    append_counters(store, streams=2, increments=3)
    relay.drain()
    pstore = ProjectionRunner(settings, Totals(), registry=reg).store
    assert pstore.active_generation() == 1
    pstore.meta.update_one(
        {"_id": pstore.name},
        {"$set": {"build_claim": "died", "build_renewed_at": utcnow() - timedelta(minutes=2)}},
    )
    assert rebuild(settings, Totals(), registry=reg) == 2  # taken over, not waited for

    monkeypatch.setattr("shared.consumer.REBUILD_BATCH", 2)  # several batches of its 8 events
    monkeypatch.setattr("shared.consumer.BUILD_RENEW", 0.0)  # renewed before every batch

    def taken_over(done, total):
        if done:  # after the first batch, another rebuild takes the build as if it were stale
            pstore.meta.update_one({"_id": pstore.name}, {"$set": {"build_claim": "other"}})

    with pytest.raises(BuildLost):
        rebuild(settings, Totals(), registry=reg, progress=taken_over)
    meta = pstore.meta.find_one({"_id": pstore.name})
    assert meta["active"] == 2 and meta["build_claim"] == "other", meta  # not released by it
    assert meta["building"] == 3  # left to the rebuild that holds the build
    assert "totals__g3" in pstore.db.list_collection_names()  # not dropped from under it


def _stepped_on_generation_1(settings, increments: int):
    """A live consumer stepped by the test (as run() would after opening, never looking
    for a swap), having applied everything appended so far to generation 1."""
    store, _topic, relay = setup(settings)
    append_counters(store, streams=3, increments=increments)
    relay.drain()
    runner = ProjectionRunner(settings, Totals(), registry=reg)
    runner.generation = runner.store.active_generation()
    runner._open()
    eventually(
        lambda: (
            runner.step(500, check_generation=False) >= 0
            and snapshot(runner.store.physical("totals", 1)) == expected_totals(store)
        ),
        message="the live consumer applied everything to generation 1",
    )
    return store, relay, runner


def test_a_consumer_two_swaps_behind_writes_nothing_into_the_generation_dropped_under_it(
    settings,
):
    """Two rebuilds swapped in before the live consumer looked: the second dropped the
    generation the consumer still wrote. Its next batch made the dropped collections again
    (and their positions), left behind for good, and the local store met a transaction
    writing a collection that was being dropped (the bench's busy section, rebuilding over
    and over). Now the batch finds its positions gone, reads that its generation was retired,
    writes nothing there, and the consumer follows the active generation."""
    store, relay, runner = _stepped_on_generation_1(settings, increments=4)
    pstore = runner.store
    assert rebuild(settings, Totals(), registry=reg) == 2
    assert rebuild(settings, Totals(), registry=reg) == 3  # generation 1 dropped
    assert "totals__g1" not in pstore.db.list_collection_names()
    append_counters(store, streams=3, increments=2, start=100)
    relay.drain()
    try:
        # the batch in hand was read for generation 1, which is gone
        eventually(
            lambda: runner.step(500, check_generation=False) == 0 and runner.generation == 3,
            message="the consumer found its generation retired and followed generation 3",
        )
        eventually(
            lambda: (
                runner.step(500, check_generation=False) >= 0
                and snapshot(pstore.reader("totals")) == expected_totals(store)
            ),
            message="the new events applied to generation 3",
        )
    finally:
        runner.close()
    names = {n for n in pstore.db.list_collection_names() if n.startswith("totals__g")}
    assert names == {"totals__g2", "totals__g3"}, names
    left = [
        d["_id"]
        for c in (pstore.offsets, pstore.processed, pstore.db["projection_progress"])
        for d in c.find({"_id": {"$regex": f"^{pstore.name}:g1:"}}, {"_id": 1})
    ]
    assert left == [], left


def test_a_consumer_behind_a_rebuild_that_keeps_no_previous_generation_follows_it(settings):
    """A disposal's rebuild (shared.disposal) drops the old generation as soon as the new one
    is active: the live consumer, which looks for a swap once a second, is told the one it
    writes was retired and follows, leaving nothing of the old one behind."""
    store, relay, runner = _stepped_on_generation_1(settings, increments=3)
    pstore = runner.store
    assert rebuild(settings, Totals(), registry=reg, keep_previous=False) == 2
    append_counters(store, streams=2, increments=1, start=50)
    relay.drain()
    try:
        eventually(
            lambda: (
                runner.step(500, check_generation=False) >= 0
                and runner.generation == 2
                and snapshot(pstore.reader("totals")) == expected_totals(store)
            ),
            message="the consumer followed generation 2 and applied the new events there",
        )
    finally:
        runner.close()
    names = {n for n in pstore.db.list_collection_names() if n.startswith("totals__g")}
    assert names == {"totals__g2"}, names


def test_a_rebuild_before_its_source_topic_exists_makes_it_and_swaps_in_an_empty_generation(
    settings,
):
    """A rebuild asks the broker for its topics and creates only those it does not have (a
    service that has published nothing yet), with the partitions its relay would give it."""
    topic = settings.topic("kernel")
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        assert topic not in admin.list_topics()
        pstore = ProjectionRunner(settings, Totals(), registry=reg).store
        assert rebuild(settings, Totals(), registry=reg) == 2
        assert topic in admin.list_topics()
        (described,) = admin.describe_topics([topic])
        assert len(described["partitions"]) == settings.topic_partitions
    finally:
        admin.close()
    assert pstore.active_generation() == 2
    assert snapshot(pstore.reader("totals")) == []
