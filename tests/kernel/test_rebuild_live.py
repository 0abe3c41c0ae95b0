"""A rebuild while the live consumer keeps applying new events (issue 14: rebuilding records'
client summaries under live writes failed with WriteConflict, stuck at 0 of 683, and left
`building: 2` and half-built collections behind)."""

from __future__ import annotations

import threading

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
