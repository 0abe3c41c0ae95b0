"""A rebuild decides each batch (runs its handlers) while the batch before it is still being
written (shared.projections.Ahead), against the real local broker and store. The store's
writes are slowed down here (a pause before each send) so that the overlap is certain and
can be seen; what is written is what the store gets."""

from __future__ import annotations

import threading
import time

import pytest
from pymongo.errors import AutoReconnect

import shared.projections as projections
from shared.consumer import rebuild
from shared.projections import snapshot
from testkit.kernel import Totals, reg

from .test_consumer import append_counters, expected_totals, live, setup


class ReadingTotals(Totals):
    """Each increment reads the running sum and writes it back: a batch that read from a
    snapshot without the batch before it would lose that batch's increments."""

    name = "totals"

    def on_CounterIncremented(self, event, view):
        current = view["totals"].find_one({"_id": event.stream_id}) or {"sum": 0}
        view["totals"].update_one(
            {"_id": event.stream_id},
            {"$set": {"sum": current["sum"] + event.data["by"]}},
            upsert=True,
        )
        view["totals"].update_one(
            {"_id": event.stream_id}, {"$push": {"versions": event.stream_version}}
        )


class Timeline:
    """What happened when, across the rebuild's threads: each send paused for `pause`."""

    def __init__(self, monkeypatch, pause: float = 0.15, fail_at: int | None = None):
        self.marks: list[tuple[str, int, float]] = []
        self.sends = 0
        self._lock = threading.Lock()
        real = projections.send

        def slow_send(writes, session, *args, **kwargs):
            with self._lock:
                self.sends += 1
                n = self.sends
            self.mark("send", n)
            time.sleep(pause)
            if fail_at is not None and n == fail_at:
                raise AutoReconnect("the store went away")
            out = real(writes, session, *args, **kwargs)
            self.mark("sent", n)
            return out

        monkeypatch.setattr(projections, "send", slow_send)

    def mark(self, what: str, n: int) -> None:
        with self._lock:
            self.marks.append((what, n, time.monotonic()))


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr("shared.consumer.REBUILD_BATCH", 12)


def test_batches_are_decided_while_the_one_before_is_written(settings, monkeypatch, small_batches):
    store, _, relay = setup(settings)
    append_counters(store, streams=4, increments=30)
    relay.drain()
    timeline = Timeline(monkeypatch)
    decided = []

    class Marking(Totals):
        def on_CounterIncremented(self, event, view):
            decided.append(time.monotonic())
            super().on_CounterIncremented(event, view)

    assert rebuild(settings, Marking(), registry=reg) == 2
    _, pstore = live(settings)
    assert snapshot(pstore.reader("totals")) == expected_totals(store)
    assert timeline.sends >= 5  # 124 events in batches of 12 at most
    # some handler ran between a send's start and its end: the next batch was being decided
    spans = [
        (start, end)
        for what, n, start in timeline.marks
        if what == "send"
        for what2, n2, end in timeline.marks
        if what2 == "sent" and n2 == n
    ]
    overlapped = [s for s in spans if any(s[0] < t < s[1] for t in decided)]
    assert len(overlapped) >= 3, (len(spans), len(overlapped))


def test_a_batch_that_reads_waits_for_the_one_before_to_commit(
    settings, monkeypatch, small_batches
):
    store, _, relay = setup(settings)
    append_counters(store, streams=3, increments=40)
    relay.drain()
    Timeline(monkeypatch)
    assert rebuild(settings, ReadingTotals(), registry=reg) == 2
    _, pstore = live(settings)
    assert snapshot(pstore.reader("totals")) == expected_totals(store)


def test_a_write_that_fails_fails_the_rebuild_and_nothing_commits_after_it(
    settings, monkeypatch, small_batches
):
    store, _, relay = setup(settings)
    append_counters(store, streams=4, increments=30)
    relay.drain()
    _, pstore = live(settings)
    pstore.active_generation()  # generation 1 exists, empty
    timeline = Timeline(monkeypatch, fail_at=3)
    with pytest.raises(AutoReconnect):
        rebuild(settings, Totals(), registry=reg)
    assert timeline.sends == 3  # the batches after the failed one were never sent
    meta = pstore.meta.find_one({"_id": pstore.name})
    assert meta["active"] == 1 and meta.get("building") is None, meta
    assert "totals__g2" not in pstore.db.list_collection_names()
    assert not pstore.stored_offsets(2)
