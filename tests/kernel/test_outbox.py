"""Outbox relay against the real local broker and store."""

import json
import threading
import time

import pytest
from kafka import TopicPartition

from shared import kafka as kafka_clients
from shared.events import NewEvent
from shared.outbox import OutboxRelay
from testkit.kernel import META, kernel_store
from testkit.plugin import STACK, eventually


def read_topic(settings, topic, with_offsets=False):
    """Every record of a topic (all partitions, from the start): (partition, decoded dict),
    or (partition, offset, decoded dict) `with_offsets`."""
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions)
    consumer = kafka_clients.consumer(settings.kafka_bootstrap, group_id=None)
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out = []
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for tp, records in consumer.poll(timeout_ms=1000).items():
                out.extend(
                    (tp.partition, r.offset, json.loads(r.value))
                    if with_offsets
                    else (tp.partition, json.loads(r.value))
                    for r in records
                )
        return out
    finally:
        consumer.close()


def test_relay_publishes_keyed_by_stream_and_marks_published(settings):
    store = kernel_store(settings)
    topic = settings.topic("kernel")
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions)
    for i in range(10):
        store.append(f"c-{i}", 0, [NewEvent("CounterOpened", {"name": str(i)})], META)
    relay = OutboxRelay(store, settings.kafka_bootstrap, topic)
    relay.drain()
    assert store.outbox_backlog()[0] == 0
    records = read_topic(settings, topic)
    assert sorted(r["stream_id"] for _, r in records) == sorted(f"c-{i}" for i in range(10))
    partitions = {r["stream_id"]: p for p, r in records}
    # the same key always lands in the same partition
    store.append("c-1", 1, [NewEvent("CounterIncremented", {"by": 1, "reason": "x"})], META)
    relay.drain()
    again = [(p, r) for p, r in read_topic(settings, topic) if r["stream_id"] == "c-1"]
    assert {p for p, _ in again} == {partitions["c-1"]}


@pytest.mark.skipif(STACK == "docker", reason="stops the local broker process")
def test_broker_down_while_1000_events_are_appended_then_all_delivered_in_order(settings):
    from deploy.local import infra as local

    store = kernel_store(settings)
    topic = settings.topic("kernel")
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions)
    relay = OutboxRelay(store, settings.kafka_bootstrap, topic)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        local.stop("broker")
        streams = [f"c-{i}" for i in range(20)]
        for s in streams:
            store.append(s, 0, [NewEvent("CounterOpened", {"name": s})], META)
        versions = dict.fromkeys(streams, 1)
        for n in range(1000 - len(streams)):  # commands still succeed with the broker down
            s = streams[n % len(streams)]
            store.append(
                s, versions[s], [NewEvent("CounterIncremented", {"by": 1, "reason": "t"})], META
            )
            versions[s] += 1
        time.sleep(1.0)
        assert store.outbox_backlog()[0] == 1000, (
            "nothing can be published while the broker is down"
        )
        local.start("broker")
        eventually(lambda: store.outbox_backlog()[0] == 0, timeout=90, message="outbox drained")
    finally:
        stop.set()
        thread.join(timeout=30)
    records = read_topic(settings, topic)
    by_stream = {}
    for _, r in records:
        by_stream.setdefault(r["stream_id"], []).append(r["stream_version"])
    assert sum(len(set(v)) for v in by_stream.values()) == 1000, "every event delivered"
    for s, seen in by_stream.items():
        deduped = [v for i, v in enumerate(seen) if v not in seen[:i]]
        assert deduped == sorted(deduped) == list(range(1, versions[s] + 1)), f"order of {s}"


def test_two_relays_share_one_lease(settings):
    store = kernel_store(settings)
    topic = settings.topic("kernel")
    a = OutboxRelay(store, settings.kafka_bootstrap, topic, owner="a")
    b = OutboxRelay(store, settings.kafka_bootstrap, topic, owner="b")
    assert a.lease.acquire() is True
    assert b.lease.acquire() is False
    a.lease.release()
    assert b.lease.acquire() is True


def test_reconcile_publishes_again_what_the_broker_lost(settings):
    """The local broker can lose acknowledged records when restarted mid-load (found by the
    fault suite). Simulated here by marking events published that never reached the topic."""
    from shared.outbox import reconcile

    store = kernel_store(settings)
    topic = settings.topic("kernel")
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions)
    for i in range(6):
        store.append(f"c-{i}", 0, [NewEvent("CounterOpened", {"name": str(i)})], META)
    OutboxRelay(store, settings.kafka_bootstrap, topic, batch_size=3).publish_once()  # 3 sent
    store.append("c-9", 0, [NewEvent("CounterOpened", {"name": "9"})], META)
    store.mark_published_through(6)  # 4..6 "acknowledged" but lost; 7 still pending
    lost = [d["_id"] for d in store.events.find({"position": {"$in": [4, 5, 6]}})]
    assert sorted(reconcile(store, settings.kafka_bootstrap, topic, republish=False)) == sorted(
        lost
    )
    assert sorted(reconcile(store, settings.kafka_bootstrap, topic)) == sorted(lost)
    assert reconcile(store, settings.kafka_bootstrap, topic, republish=False) == []
    assert len(read_topic(settings, topic)) == 6


def test_after_a_broker_failure_the_relay_checks_its_recent_acks_and_resends_what_was_lost(
    settings,
):
    """The broker acknowledged records and then lost them in an outage (the local one did,
    restarted mid-load): the relay notes where its recent acknowledgements start when it
    sees the failure (durably), and once a broker answers again — here a new relay process —
    reads the topic from there and publishes again what is missing."""
    from shared.outbox import VERIFY_ID
    from testkit.procs import free_port

    store = kernel_store(settings)
    topic = settings.topic("kernel")
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions)
    for i in range(6):
        store.append(f"c-{i}", 0, [NewEvent("CounterOpened", {"name": str(i)})], META)
    relay = OutboxRelay(store, settings.kafka_bootstrap, topic, batch_size=3)
    assert relay.publish_once() == 3
    store.mark_published_through(6)  # 4..6 "acknowledged", then lost by the broker
    lost = sorted(d["_id"] for d in store.events.find({"position": {"$in": [4, 5, 6]}}))
    store.append("c-9", 0, [NewEvent("CounterOpened", {"name": "9"})], META)

    dead = f"127.0.0.1:{free_port()}"  # the broker is away: nothing answers there
    relay._drop_producer()
    relay._producer_factory = lambda: kafka_clients.producer(dead, bootstrap_timeout_ms=1000)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        doc = eventually(
            lambda: store.db["outbox"].find_one({"_id": VERIFY_ID}),
            timeout=60,
            message="the failure noted where the recent acknowledgements start",
        )
    finally:
        stop.set()
        thread.join(timeout=30)
    assert doc["from_position"] == 0 and doc["offsets"], doc
    assert store.outbox_backlog()[0] == 1, "event 7 waits for the broker"

    restarted = OutboxRelay(store, settings.kafka_bootstrap, topic)
    stop = threading.Event()
    thread = threading.Thread(target=restarted.run, args=(stop,), daemon=True)
    thread.start()
    try:
        eventually(
            lambda: store.db["outbox"].find_one({"_id": VERIFY_ID}) is None,
            timeout=60,
            message="the check ran and was cleared",
        )
    finally:
        stop.set()
        thread.join(timeout=30)
    assert restarted.republished_total == 3
    repair = store.db["outbox_repairs"].find_one()
    assert repair["count"] == 3 and sorted(repair["event_ids"]) == lost, "kept for the operator"
    on_topic = [r["event_id"] for _, r in read_topic(settings, topic)]
    assert sorted(set(on_topic)) == sorted(d["_id"] for d in store.events.find({}, {"_id": 1}))
    assert len(on_topic) == 7, "the lost three published once more, nothing else twice"
    assert sorted(on_topic[i] for i in range(7) if on_topic[i] in lost) == lost


def test_a_relay_that_saw_no_failure_reads_nothing_back(settings):
    store = kernel_store(settings)
    topic = settings.topic("kernel")
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions)
    store.append("c-1", 0, [NewEvent("CounterOpened", {"name": "1"})], META)
    relay = OutboxRelay(store, settings.kafka_bootstrap, topic)
    assert relay.verify_after_outage() is None  # nothing in doubt: no topic read at all
    relay.drain()
    assert relay.verify_after_outage() is None and relay.republished_total == 0


@pytest.mark.skipif(STACK == "docker", reason="stops the local store process")
def test_a_relay_started_while_the_store_is_down_waits_for_it_then_publishes(settings):
    """`python -m shared.run relay` made the events' indexes before its loop: with the store
    down at that moment the process died with a traceback instead of waiting as it does for
    an outage later on."""
    from deploy.local import infra as local
    from shared.run import make_relay

    store = kernel_store(settings)  # the kernel's events, as the relay will read them
    topic = settings.topic("kernel")
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions)
    local.stop("store")
    stop = threading.Event()
    try:
        relay = make_relay(settings, "kernel")  # the store is down: this must not raise
        died: list[BaseException] = []

        def run():
            try:
                relay.run(stop)
            except BaseException as err:  # what the process would have died of
                died.append(err)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        time.sleep(6.0)  # longer than the store client's 5 s server selection
        assert thread.is_alive() and not died, died
    finally:
        local.start("store")
    try:
        store.append("c-late", 0, [NewEvent("CounterOpened", {"name": "late"})], META)
        eventually(lambda: store.outbox_backlog()[0] == 0, timeout=60, message="published")
        assert "c-late" in {r["stream_id"] for _, r in read_topic(settings, topic)}
    finally:
        stop.set()
        thread.join(timeout=30)


def test_the_relay_rings_the_consumers_before_it_writes_its_checkpoint(settings):
    """The records are on the topic once the broker acknowledged them: the consumers watching
    the source's outbox are rung then, not after the checkpoint's write, a round trip that
    the busy hour's queue at the store made ~14 ms long on every hop (issue 14)."""
    from shared import chime

    store = kernel_store(settings)
    topic = settings.topic("kernel")
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions)
    relay = OutboxRelay(store, settings.kafka_bootstrap, topic)
    relay.drain()  # whatever earlier tests left
    name = store.db["outbox"].full_name
    rung_at_mark, mark = [], store.mark_published_through

    def marking(position):
        rung_at_mark.append(chime.rings[name] - before)
        mark(position)

    store.mark_published_through = marking
    store.append("ring-first", 0, [NewEvent("CounterOpened", {"name": "r"})], META)
    before = chime.rings[name]
    assert relay.publish_once() == 1
    assert rung_at_mark == [1]  # rung once, and before the checkpoint was written
    assert chime.rings[name] - before == 1
    assert store.outbox_backlog()[0] == 0
