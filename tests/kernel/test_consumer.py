"""Consumer runner and projections against the real local broker and store."""

import json
import time
from itertools import pairwise

from kafka import KafkaAdminClient
from kafka.partitioner.default import murmur2
from pymongo import ASCENDING, IndexModel

from shared import chime
from shared import kafka as kafka_clients
from shared.consumer import KAFKA_COMMIT_EVERY, ProjectionRunner, rebuild
from shared.events import NewEvent
from shared.outbox import OutboxRelay, message_from_document
from shared.projections import HANDLED, snapshot
from testkit.kernel import META, Totals, kernel_store, reg
from testkit.plugin import eventually, running

from .test_outbox import read_topic


def append_counters(store, streams=5, increments=10, start=0):
    for s in range(streams):
        sid = f"c-{s}"
        version = store.stream_version(sid)
        events = [] if version else [NewEvent("CounterOpened", {"name": sid})]
        events += [
            NewEvent("CounterIncremented", {"by": start + i + 1, "reason": "t"})
            for i in range(increments)
        ]
        store.append(sid, version, events, META)


def expected_totals(store):
    out = {}
    for event in store.read_all():
        doc = out.setdefault(event.stream_id, {"_id": event.stream_id, "sum": 0, "versions": []})
        if event.type == "CounterOpened":
            doc["name"] = event.data["name"]
        else:
            doc["sum"] += event.data["by"]
            doc["versions"].append(event.stream_version)
    return sorted(out.values(), key=lambda d: d["_id"])


def setup(settings):
    store = kernel_store(settings)
    topic = settings.topic("kernel")
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions)
    return store, topic, OutboxRelay(store, settings.kafka_bootstrap, topic)


def live(settings):
    runner = ProjectionRunner(settings, Totals(), registry=reg, status_interval=0.5)
    return runner, runner.store


def test_projection_follows_the_events_in_order(settings):
    store, topic, relay = setup(settings)
    append_counters(store)
    relay.drain()
    runner, pstore = live(settings)
    with running(runner.run):
        eventually(lambda: snapshot(pstore.reader("totals")) == expected_totals(store))
    docs = snapshot(pstore.reader("totals"))
    assert all(d["versions"] == list(range(2, 12)) for d in docs)


def test_every_event_delivered_twice_changes_nothing(settings):
    store, topic, relay = setup(settings)
    append_counters(store)
    # publish every event twice, as a relay that crashed before marking would
    producer = kafka_clients.producer(settings.kafka_bootstrap)
    for doc in store.pending(1000):
        for _ in range(2):
            producer.send(topic, key=doc["stream_id"].encode(), value=message_from_document(doc))
    producer.flush()
    producer.close()
    runner, pstore = live(settings)
    with running(runner.run):
        eventually(
            lambda: (
                runner.applied_total == 55
                and snapshot(pstore.reader("totals")) == expected_totals(store)
            )
        )
    assert runner.applied_total == 55, "each of the 55 events applied exactly once"


def test_restarted_consumer_resumes_from_its_offset(settings):
    store, topic, relay = setup(settings)
    append_counters(store)
    relay.drain()
    first, pstore = live(settings)
    with running(first.run):
        eventually(lambda: first.applied_total == 55)
    append_counters(store, increments=4, start=100)  # while no consumer runs
    relay.drain()
    second, _ = live(settings)
    with running(second.run):
        eventually(lambda: snapshot(pstore.reader("totals")) == expected_totals(store))
    assert second.applied_total == 20, "the restarted consumer read only what it had not seen"
    offsets = pstore.stored_offsets(pstore.active_generation())
    assert sum(offsets.values()) == 75


def test_unknown_event_type_is_parked_loudly_and_the_rest_apply(settings):
    store, topic, relay = setup(settings)
    append_counters(store, streams=1, increments=2)
    relay.drain()
    producer = kafka_clients.producer(settings.kafka_bootstrap)
    bogus = {
        "event_id": "x-1",
        "type": "CounterExploded",
        "schema_version": 1,
        "stream_id": "c-0",
        "stream_version": 99,
        "occurred_at": "2026-11-26T10:00:00+00:00",
        "recorded_at": "2026-11-26T10:00:00+00:00",
        "actor": {"id": "a", "role": "admin"},
        "correlation_id": "c",
        "causation_id": None,
        "data": {},
    }
    producer.send(topic, key=b"c-0", value=json.dumps(bogus).encode())
    producer.flush()
    producer.close()
    append_counters(store, streams=1, increments=1, start=10)
    relay.drain()
    runner, pstore = live(settings)
    with running(runner.run):
        eventually(lambda: snapshot(pstore.reader("totals")) == expected_totals(store))
    parked = list(pstore.dead_letters.find())
    assert len(parked) == 1 and "CounterExploded" in parked[0]["error"]
    # a rebuild decodes its batches ahead of their transactions: the same record is parked
    # again (the same entry, newly dated) and the rest apply
    pstore.dead_letters.update_one({"_id": parked[0]["_id"]}, {"$set": {"error": "old"}})
    assert rebuild(settings, Totals(), registry=reg) == 2
    assert snapshot(pstore.reader("totals")) == expected_totals(store)
    again = list(pstore.dead_letters.find())
    assert len(again) == 1 and "CounterExploded" in again[0]["error"], again


def test_rebuilt_projection_equals_the_live_one_and_is_swapped_in(settings):
    store, topic, relay = setup(settings)
    append_counters(store, streams=8, increments=25)
    relay.drain()
    runner, pstore = live(settings)
    with running(runner.run):
        eventually(lambda: snapshot(pstore.reader("totals")) == expected_totals(store))
        live_docs = snapshot(pstore.reader("totals"))
        progress = []
        generation = rebuild(
            settings, Totals(), registry=reg, progress=lambda d, t: progress.append((d, t))
        )
        assert generation == 2
        assert snapshot(pstore.reader("totals")) == live_docs
        assert progress[-1] == (208, 208)
        # the live consumer follows the new generation
        append_counters(store, streams=8, increments=1, start=500)
        relay.drain()
        eventually(lambda: snapshot(pstore.reader("totals")) == expected_totals(store))
    assert pstore.active_generation() == 2


def test_a_rebuild_keeps_its_positions_in_memory_and_writes_them_once_it_has_read_all(
    settings, monkeypatch
):
    """A rebuild is its generation's only writer: it finds repeats by the positions it keeps
    in memory and writes the progress document once, before the swap, instead of with each
    of its batches. The repeats (every record published twice) still apply once, and the
    live consumer goes on from the document it wrote."""
    import shared.consumer
    from shared.consistency import PROGRESS
    from testkit.kernel import listened_settings, writes_to

    store, topic, relay = setup(settings)
    append_counters(store, streams=6, increments=10)
    relay.drain()
    producer = kafka_clients.producer(settings.kafka_bootstrap)
    for _partition, value in read_topic(settings, topic):
        producer.send(topic, key=value["stream_id"].encode(), value=json.dumps(value).encode())
    producer.flush()
    producer.close()
    monkeypatch.setattr(shared.consumer, "REBUILD_BATCH", 9)  # 132 records: many batches
    heard, listener = listened_settings(settings, monkeypatch, "rebuild-progress")
    runner, pstore = live(settings)
    with running(runner.run):
        eventually(lambda: snapshot(pstore.reader("totals")) == expected_totals(store))
        applies = listener.names.count("commitTransaction")
        assert rebuild(heard, Totals(), registry=reg) == 2
        batches = listener.names.count("commitTransaction") - applies
        progress_writes = writes_to(listener.commands, PROGRESS)
        assert batches >= 132 // 9, batches
        # the rebuild's own (the live consumer's go to g1's document)
        rebuilds = [w for w in progress_writes if w[1]["q"]["_id"].startswith("totals:g2:")]
        assert len(rebuilds) == 1, progress_writes
        # each total's first write went as the insert of what it made (shared.combine.Fresh),
        # later ones as updates: no upsert of a document the generation did not have
        written = writes_to(listener.commands, "totals__g2")
        inserted = [d["_id"] for kind, d in written if kind == "insert"]
        assert sorted(inserted) == [f"c-{s}" for s in range(6)], inserted
        updates = [u for kind, u in written if kind == "update"]
        assert updates and all(u["q"]["_id"] in inserted for u in updates)
        doc = pstore.db[PROGRESS].find_one({"_id": "totals:g2:kernel"})
        last = max(e.position for e in store.read_all())
        assert (doc["through"], doc["ahead"]) == (last, []), doc
        assert snapshot(pstore.reader("totals")) == expected_totals(store)
        append_counters(store, streams=6, increments=1, start=500)
        relay.drain()
        eventually(lambda: snapshot(pstore.reader("totals")) == expected_totals(store))


class Fragile(Totals):
    """A handler bug on one stream: it is parked, the rest apply; once fixed, redrive applies it."""

    broken = True

    def on_CounterIncremented(self, event, view):
        if Fragile.broken and event.stream_id == "c-1" and event.stream_version == 3:
            raise RuntimeError("bug in the handler")
        super().on_CounterIncremented(event, view)


def test_a_handler_bug_parks_one_event_and_redrive_applies_it_after_the_fix(settings):
    from shared.consumer import redrive

    store, topic, relay = setup(settings)
    append_counters(store, streams=3, increments=3)
    relay.drain()
    Fragile.broken = True
    runner = ProjectionRunner(settings, Fragile(), registry=reg)
    with running(runner.run):
        eventually(
            lambda: (
                runner.store.dead_letters.count_documents({}) == 1 and runner.applied_total == 11
            )
        )
    assert "bug in the handler" in runner.store.dead_letters.find_one()["error"]
    assert snapshot(runner.store.reader("totals")) != expected_totals(store)
    Fragile.broken = False
    offsets_before = runner.store.stored_offsets(1)
    assert redrive(settings, Fragile(), registry=reg) == (1, 0)
    assert runner.store.stored_offsets(1) == offsets_before, "redrive does not move offsets"
    docs = snapshot(runner.store.reader("totals"))
    # applied late, so after its successors: order-sensitive projections are rebuilt instead
    assert sorted(next(d["versions"] for d in docs if d["_id"] == "c-1")) == [2, 3, 4]
    assert [d["sum"] for d in docs] == [d["sum"] for d in expected_totals(store)]


def test_a_partition_whose_offsets_now_hold_other_records_is_read_again_from_the_start(settings):
    """The local broker lost acknowledged records in a restart and gave their offsets to new
    ones. Simulated: the stored offsets say the runner read past the end, and the event
    before them is one the topic no longer holds. Resuming there would skip what follows;
    the runner notices and reads those partitions again (the processed ids drop repeats)."""
    store, topic, relay = setup(settings)
    append_counters(store, streams=5, increments=4)
    relay.drain()
    runner, pstore = live(settings)
    with running(runner.run):
        eventually(lambda: snapshot(pstore.reader("totals")) == expected_totals(store))
    applied_before = runner.applied_total
    append_counters(store, streams=5, increments=2, start=100)  # arrive after the "loss"
    relay.drain()
    generation = pstore.active_generation()
    for tp, (offset, _) in pstore.stored_positions(generation).items():
        pstore.offsets.update_one(
            {"_id": f"{pstore.name}:g{generation}:{tp[0]}:{tp[1]}"},
            {"$set": {"next_offset": offset + 2, "last_event_id": "lost-event"}},
        )
    restarted, _ = live(settings)
    with running(restarted.run):
        eventually(
            lambda: snapshot(pstore.reader("totals")) == expected_totals(store),
            timeout=30,
            message="the records after the stored offsets were applied",
        )
    assert applied_before == 25 and restarted.applied_total == 10, "each event applied once"


def test_rewritten_partitions_compares_what_was_read_with_what_the_broker_holds(settings):
    from kafka import TopicPartition

    from shared.consumer import rewritten_partitions

    store, topic, relay = setup(settings)
    append_counters(store, streams=6, increments=5)
    relay.drain()
    held = {}
    for partition, offset, record in read_topic(settings, topic, with_offsets=True):
        held.setdefault(partition, []).append((offset, record["event_id"]))
    parts = sorted(held)
    samples = {TopicPartition(topic, p): held[p][::3] for p in parts}
    assert rewritten_partitions(settings.kafka_bootstrap, samples) == set(), "all still there"
    first = TopicPartition(topic, parts[0])
    changed = dict(samples)
    offset, _ = held[parts[0]][1]
    changed[first] = samples[first] + [(offset, "an-event-the-broker-lost")]
    past_end = TopicPartition(topic, parts[-1])
    changed[past_end] = samples[past_end] + [(len(held[parts[-1]]) + 5, "beyond-the-end")]
    assert rewritten_partitions(settings.kafka_bootstrap, changed) == {first, past_end}


class Opened(Totals):
    """Notes every counter opened in a collection beside the generations (as notifications'
    planner writes its message book), while another loop of the process makes that
    collection's indexes in the middle of the handler's transaction (the dispatcher starting
    beside the consumers did, in CI)."""

    name = "opened"
    batched = False
    outside = {"opened_list": [IndexModel([("name", ASCENDING), ("status", ASCENDING)])]}

    def on_CounterOpened(self, event, view):
        view.database["opened_list"].update_one(
            {"_id": event.stream_id},
            {"$setOnInsert": {"name": event.data["name"], "status": "pending"}},
            upsert=True,
            session=view.session,
        )
        other_loop = view.database.client[view.database.name]["opened_list"]  # no session
        other_loop.create_indexes(list(self.outside["opened_list"]))


def test_the_indexes_beside_the_generations_exist_before_the_first_transaction(settings):
    """The local store builds a new index without the writes of a transaction open meanwhile:
    such a write is then missing from every query by that index, for good. The runner makes
    the outside indexes before it applies anything, so a later create_indexes is a no-op."""
    store, topic, relay = setup(settings)
    append_counters(store, streams=3, increments=1)
    relay.drain()
    runner = ProjectionRunner(settings, Opened(), registry=reg)
    listed = runner.store.db["opened_list"]
    # the collection exists (as the message book does once a message was sent); a new
    # collection's index would instead wait for the transaction that creates it
    listed.insert_one({"_id": "earlier", "name": "earlier", "status": "done"})
    with running(runner.run):
        eventually(lambda: listed.count_documents({}) == 4, message="all three noted")
    by_index = listed.find({"name": {"$in": ["c-0", "c-1", "c-2"]}, "status": "pending"})
    assert sorted(d["_id"] for d in by_index) == ["c-0", "c-1", "c-2"]


def counting_batches(runner: ProjectionRunner) -> list[int]:
    """The records each batch applied, in order, as the runner applies them."""
    batches, apply = [], runner.store.apply

    def counted(records, generation):
        applied = apply(records, generation)
        batches.append(applied)
        return applied

    runner.store.apply = counted  # type: ignore[method-assign]
    return batches


def first_applied_alone(runner: ProjectionRunner, store, relay) -> None:
    """A counter opened and published, and applied before anything else is published."""
    store.append("c-0", 0, [NewEvent("CounterOpened", {"name": "c-0"})], META)
    relay.drain()
    eventually(lambda: runner.applied_total == 1, message="the first event, on its own")


class LingeringTotals(Totals):
    linger = 3.0


def test_a_lingering_projection_applies_what_came_during_its_linger_in_one_batch(settings):
    """Projection.linger: the first event after a quiet spell is applied on its own, as soon as
    it comes; the events published while the runner lingers after that batch are applied
    together in the next one, not one batch (one transaction) per publish."""
    store, topic, relay = setup(settings)
    runner = ProjectionRunner(settings, LingeringTotals(), registry=reg)
    batches = counting_batches(runner)
    with running(runner.run):
        first_applied_alone(runner, store, relay)
        two = [NewEvent("CounterIncremented", {"by": 1, "reason": "t"})] * 2
        for i in range(5):  # five publishes, well within the linger
            store.append("c-0", 1 + 2 * i, two, META)
            relay.drain()
        eventually(lambda: runner.applied_total == 11, message="the ten increments")
    assert batches == [1, 10], batches
    assert snapshot(runner.store.reader("totals")) == expected_totals(store)


class UrgentTotals(Totals):
    linger = 60.0  # far past the test's patience: only an urgent event ends it
    urgent = frozenset({"CounterOpened"})


def partition_of(settings, stream_id: str) -> int:
    """The partition the relay's producer puts a stream's events on (its key, murmur2)."""
    return (murmur2(stream_id.encode()) & 0x7FFFFFFF) % settings.topic_partitions


def stream_beside(settings, stream_id: str, *, same: bool) -> str:
    """A counter on the same partition as stream_id, or on another one."""
    home = partition_of(settings, stream_id)
    return next(
        s
        for s in (f"c-{i}" for i in range(1, 1000))
        if s != stream_id and (partition_of(settings, s) == home) == same
    )


def lingering_with_chimes(settings, tmp_path, monkeypatch, projection):
    """A runner that hears the relay's chimes, as `make up` runs it, and its batch sizes."""
    monkeypatch.setenv(chime.ENV, str(tmp_path / "wake"))
    monkeypatch.setenv("RAPPORT_CHANGE_STREAMS", "0")
    store, topic, relay = setup(settings)
    runner = ProjectionRunner(settings, projection, registry=reg)
    return store, relay, runner, counting_batches(runner)


def hold_increments(store, relay, runner, batches, wait: float = 1.0) -> float:
    """c-0 opened and applied alone, then six increments published while the runner lingers
    and still waiting `wait` seconds later; when they were published (time.monotonic)."""
    first_applied_alone(runner, store, relay)
    assert chime.listen(), "the runner hears the relay's chimes"
    two = [NewEvent("CounterIncremented", {"by": 1, "reason": "t"})] * 2
    for i in range(3):  # not urgent: held
        store.append("c-0", 1 + 2 * i, two, META)
        relay.drain()
    published = time.monotonic()
    time.sleep(wait)
    assert runner.applied_total == 1 and batches == [1], "the increments wait"
    return published


def test_an_urgent_event_ends_the_linger_and_goes_with_what_its_partition_held(
    settings, tmp_path, monkeypatch
):
    """Projection.urgent: while the runner lingers it holds what is published; an event of
    an urgent type ends the linger at once, and is applied in one batch with what its
    partition held, in order."""
    store, relay, runner, batches = lingering_with_chimes(
        settings, tmp_path, monkeypatch, UrgentTotals()
    )
    beside = stream_beside(settings, "c-0", same=True)
    with running(runner.run):
        hold_increments(store, relay, runner, batches)
        store.append(beside, 0, [NewEvent("CounterOpened", {"name": beside})], META)
        relay.drain()
        eventually(lambda: runner.applied_total == 8, message="the urgent one ends the linger")
    assert batches == [1, 7], batches
    assert snapshot(runner.store.reader("totals")) == expected_totals(store)


class UrgentLaneTotals(Totals):
    linger = 6.0
    urgent = frozenset({"CounterOpened"})


def test_an_urgent_event_goes_alone_when_other_partitions_hold_the_rest(
    settings, tmp_path, monkeypatch
):
    """The urgent lane: an urgent event on another partition is applied at once without what
    the other partitions hold; those wait out their linger (counted from when they were
    held, not restarted by the urgent batch) and go together after it."""
    store, relay, runner, batches = lingering_with_chimes(
        settings, tmp_path, monkeypatch, UrgentLaneTotals()
    )
    other = stream_beside(settings, "c-0", same=False)
    with running(runner.run):
        # the urgent one comes well into their linger: were it restarted by the urgent batch,
        # they would wait that long more
        published = hold_increments(store, relay, runner, batches, wait=2.5)
        store.append(other, 0, [NewEvent("CounterOpened", {"name": other})], META)
        relay.drain()
        eventually(lambda: runner.applied_total == 2, message="the urgent one, at once")
        assert batches == [1, 1], f"only the urgent partition went: {batches}"
        assert runner.applied_total == 2, "the increments still wait"
        eventually(lambda: runner.applied_total == 8, timeout=30, message="the held ones")
        waited = time.monotonic() - published
    assert batches == [1, 1, 6], batches
    assert waited < UrgentLaneTotals.linger + 1.25, f"the linger was restarted: {waited:.1f}s"
    assert snapshot(runner.store.reader("totals")) == expected_totals(store)


def test_urgent_handled_means_the_types_the_projection_has_handlers_for():
    """Projection.urgent = HANDLED: a projection reading a busy topic for a few types lingers
    on the others and not on its own (scheduling's therapists, records' course ends)."""

    class OwnTypes(Totals):
        linger, urgent = 0.5, HANDLED

    assert OwnTypes().urgent_types() == {"CounterOpened", "CounterIncremented"}
    assert UrgentTotals().urgent_types() == {"CounterOpened"}
    assert Totals().urgent_types() == frozenset()


def committed_on_the_broker(settings, group: str) -> int:
    """The group's committed offsets on the broker, summed: what a Kafka tool reads for lag."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        return sum(m.offset for m in admin.list_group_offsets(group)[group].values())
    finally:
        admin.close()


def test_positions_reach_the_broker_at_most_once_a_second_and_all_of_them_on_stop(settings):
    """The runner commits its positions to the broker for the lag a Kafka tool shows, not
    after every batch (that was a round trip to the broker before each next poll): at most
    once a KAFKA_COMMIT_EVERY without waiting, the last ones once due while it is idle, and
    all of them when it stops."""
    store, topic, relay = setup(settings)
    runner, pstore = live(settings)
    batches = counting_batches(runner)
    commits: list[float] = []
    with running(runner.run):
        eventually(lambda: runner.consumer is not None, message="the consumer opened")
        consumer = runner.opened
        as_shipped = consumer.commit_async

        def commit_async(*args, **kwargs):  # the real commit, counted
            commits.append(time.monotonic())
            return as_shipped(*args, **kwargs)

        consumer.commit_async = commit_async  # type: ignore[method-assign]
        started = time.monotonic()
        store.append("c-0", 0, [NewEvent("CounterOpened", {"name": "c-0"})], META)
        for i in range(24):  # one event at a time, each applied before the next is published
            relay.drain()
            eventually(lambda i=i: runner.applied_total == i + 1, message=f"event {i + 1}")
            store.append(
                "c-0", i + 1, [NewEvent("CounterIncremented", {"by": 1, "reason": "t"})], META
            )
        relay.drain()
        eventually(lambda: runner.applied_total == 25, message="all 25 events")
        # idle after its last batch, the runner still commits what it applied, once due
        eventually(
            lambda: committed_on_the_broker(settings, runner.group) == 25,
            timeout=3 * KAFKA_COMMIT_EVERY,
            message="the last positions committed while the runner is idle",
        )
        spent = time.monotonic() - started
    assert len(batches) >= 20, batches
    assert 1 <= len(commits) <= spent / KAFKA_COMMIT_EVERY + 1, (len(commits), spent)
    assert all(b - a >= KAFKA_COMMIT_EVERY for a, b in pairwise(commits)), commits
    # stopped: every position applied is committed on the broker, as the store's offsets say
    stored = pstore.stored_offsets(pstore.active_generation())
    assert sum(stored.values()) == 25
    assert committed_on_the_broker(settings, runner.group) == 25


def test_a_join_kafka_python_left_unfinished_is_taken_up_and_the_runner_holds_its_partitions(
    settings,
):
    """kafka-python 3.0.12 drops the end of a join a poll of no time gave up waiting for,
    when the join was for a change of the partitions the leader noticed (each runner's
    start meets one: its first assignment was made before the topic's partitions were
    known). The consumer then read nothing more for good while the broker counted it as
    holding every partition, and its projections stopped (CI, session 35). The runner's
    polls take such a join up: a rejoin, and the partitions are held again."""
    store, _topic, relay = setup(settings)
    append_counters(store, streams=2, increments=1)
    relay.drain()
    runner, pstore = live(settings)
    runner.generations = [pstore.active_generation()]
    runner._open()
    consumer = runner.opened
    coordinator = consumer._coordinator
    try:
        eventually(
            lambda: (
                runner.step(500, check_generation=False) >= 0
                and snapshot(pstore.reader("totals")) == expected_totals(store)
                and not coordinator.need_rejoin()
            ),
            message="the runner joined, holds every partition and applied what was there",
        )
        held = consumer.assignment()
        assert len(held) == settings.topic_partitions

        # the leader's snapshot of the partitions it assigned, as at a first join made
        # before the topic's partitions were known: the leader rejoins, in a poll of a
        # millisecond that gives up waiting for the join (the partitions are revoked)
        coordinator._assignment_snapshot = {}
        eventually(
            lambda: consumer.poll(timeout_ms=1) == {} and coordinator._join_task is not None,
            message="a short poll gave up waiting for a join",
        )
        eventually(lambda: coordinator._join_task.is_done, message="the join ended")
        append_counters(store, streams=2, increments=1, start=5)
        relay.drain()
        # as kafka-python leaves it: no poll takes the join up, and nothing more is read
        fetched = [consumer.poll(timeout_ms=200) for _ in range(10)]
        assert not coordinator.need_rejoin() and not any(fetched), (
            "kafka-python took the join up: the workaround may go"
        )
        assert snapshot(pstore.reader("totals")) != expected_totals(store)
        # the runner's polls take it up: the partitions are held again, what came is applied
        eventually(
            lambda: (
                runner.step(500, check_generation=False) >= 0
                and snapshot(pstore.reader("totals")) == expected_totals(store)
            ),
            timeout=10,
            message="the runner took the join up and applied what came",
        )
        assert consumer.assignment() == held
    finally:
        runner.close()
