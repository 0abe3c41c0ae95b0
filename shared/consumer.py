"""Consumer runner: one consumer group per projection, static membership
(`group_instance_id`, see infrastructure.md: the local broker never expires a dead member),
offsets kept in MongoDB with the projection writes, Kafka commits after them for lag
monitoring, rebalances and CommitFailedError handled, clean stop on SIGTERM; and the
projection rebuild: replay the topics from the start into a new generation, then swap."""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

from kafka import TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, IllegalGenerationError, KafkaError, RebalanceInProgressError
from pymongo.errors import PyMongoError

from . import kafka as kafka_clients
from .config import Settings
from .crypto import cipher_for
from .events import EventRegistry, registry as default_registry, utcnow
from .mongo import client as mongo_client
from .projections import Projection, ProjectionStore, Record

log = logging.getLogger(__name__)


def group_id(settings: Settings, projection: Projection) -> str:
    return f"{settings.topic_prefix}{projection.service}.{projection.name}"


def projection_store(settings: Settings, projection: Projection,
                     registry: EventRegistry = default_registry) -> ProjectionStore:
    return ProjectionStore(mongo_client(settings.mongo_uri), settings.database(projection.service),
                           projection, registry, cipher=cipher_for(settings))


def _records(batch) -> list[Record]:
    out = []
    for tp in sorted(batch, key=lambda t: (t.topic, t.partition)):
        out.extend(Record(r.topic, r.partition, r.offset, r.value) for r in batch[tp])
    return out


class _SeekOnAssign(ConsumerRebalanceListener):
    def __init__(self, runner: "ProjectionRunner"):
        self.runner = runner

    def on_partitions_revoked(self, revoked):
        # offsets live in MongoDB with the projection writes; nothing to flush here
        log.info("%s: partitions revoked %s", self.runner.store.name, sorted(revoked))

    def on_partitions_assigned(self, assigned):
        log.info("%s: partitions assigned %s", self.runner.store.name, sorted(assigned))
        self.runner.seek_to_stored(assigned)


def rewritten_partitions(bootstrap: str, checks: dict, timeout: float = 15.0) -> set:
    """Of `checks` ({TopicPartition: (next offset, id of the event before it)}), the
    partitions where the record at next offset - 1 is missing or holds another event. Real
    Kafka keeps acknowledged records across a clean restart; the local broker was seen losing
    some, and a consumer resuming at its stored offset would skip the records that then took
    their offsets. A partition that cannot be checked in `timeout` counts as rewritten
    (reading it again costs time; skipping records would lose them)."""
    if not checks:
        return set()
    probe = kafka_clients.consumer(bootstrap, group_id=None, max_poll_records=100)
    try:
        parts = list(checks)
        probe.assign(parts)
        ends = probe.end_offsets(parts)
        rewritten = {tp for tp in parts if ends[tp] < checks[tp][0]}
        pending = set(parts) - rewritten
        for tp in pending:
            probe.seek(tp, checks[tp][0] - 1)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for tp, records in probe.poll(timeout_ms=500).items():
                if tp not in pending or not records:
                    continue
                wanted, last_id = checks[tp][0] - 1, checks[tp][1]
                first = records[0]
                try:
                    held = json.loads(first.value).get("event_id") if first.offset == wanted else None
                except ValueError:
                    held = None
                if held != last_id:
                    rewritten.add(tp)
                pending.discard(tp)
                probe.pause(tp)
        return rewritten | pending
    finally:
        probe.close()


class ProjectionRunner:
    def __init__(self, settings: Settings, projection: Projection, *, instance: int = 0,
                 registry: EventRegistry = default_registry, status_interval: float = 5.0):
        self.settings, self.projection = settings, projection
        self.store = projection_store(settings, projection, registry)
        self.topics = [settings.topic(s) for s in projection.sources]
        self.group = group_id(settings, projection)
        self.instance_id = f"{self.group}-{instance}"
        self.status_interval = status_interval
        self.generation = 0
        self.consumer = None
        self.applied_total = 0
        self.idle = False
        self.idle_wait = 0.3
        self._last_status = 0.0

    def seek_to_stored(self, partitions) -> None:
        """Position each partition at its stored offset; a partition whose record before
        that offset is no longer the last event applied (the broker lost records and gave
        their offsets to new ones) is read again from the beginning: the processed ids
        drop what was applied already, and nothing new is skipped."""
        partitions = list(partitions)
        stored = self.store.stored_positions(self.generation)
        rewritten = rewritten_partitions(
            self.settings.kafka_bootstrap,
            {tp: stored[(tp.topic, tp.partition)] for tp in partitions
             if (tp.topic, tp.partition) in stored and stored[(tp.topic, tp.partition)][1]})
        for tp in partitions:
            position = stored.get((tp.topic, tp.partition))
            if position is None or tp in rewritten:
                if tp in rewritten:
                    log.warning("%s: %s:%d no longer holds the last applied event at offset %d "
                                "(the broker lost records): reading it again from the start",
                                self.store.name, tp.topic, tp.partition, position[0] - 1)
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, position[0])

    def _open(self) -> None:
        kafka_clients.ensure_topics(self.settings.kafka_bootstrap, self.topics,
                                    self.settings.topic_partitions)
        self.consumer = kafka_clients.consumer(
            self.settings.kafka_bootstrap, group_id=self.group,
            group_instance_id=self.instance_id, client_id=self.instance_id)
        self.consumer.subscribe(self.topics, listener=_SeekOnAssign(self))

    def run(self, stop: threading.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            try:
                if self.consumer is None:
                    self.generation = self.store.active_generation()
                    self._open()
                if self.step() == 0 and self.idle:
                    # the local broker answers fetches at once instead of holding them for
                    # fetch_max_wait_ms, so an idle consumer would spin: rest between polls
                    stop.wait(self.idle_wait)
                backoff = 0.2
            except PyMongoError as err:
                log.warning("%s: store unavailable (%s); retrying in %.1fs",
                            self.store.name, err, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                self._reseek_after_failure()
            except KafkaError as err:
                log.warning("%s: broker error (%s); retrying in %.1fs", self.store.name, err, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                self._reseek_after_failure()  # and check the broker still holds what was read
        self.close()

    def step(self, timeout_ms: int = 100) -> int:
        active = self.store.active_generation()
        if active != self.generation:  # a rebuild was swapped in: follow it
            log.info("%s: switching to generation %d", self.store.name, active)
            self.generation = active
            self.seek_to_stored(self.consumer.assignment())
        batch = self.consumer.poll(timeout_ms=timeout_ms)
        self.idle = not batch
        applied = 0
        if batch:
            applied = self.store.apply(_records(batch), self.generation)
            self.applied_total += applied
            try:
                self.consumer.commit()
            except (CommitFailedError, IllegalGenerationError, RebalanceInProgressError) as err:
                # normal during a rebalance: the MongoDB offsets are the source of truth
                log.info("%s: commit skipped during rebalance (%s)", self.store.name, err)
        self._report_status()
        return applied

    def _reseek_after_failure(self) -> None:
        # the consumer's positions moved past records that were not applied: go back
        if self.consumer is None:
            return
        try:
            self.seek_to_stored(self.consumer.assignment())
        except (PyMongoError, KafkaError):
            pass  # still down; the next step fails again and we come back here

    def _report_status(self) -> None:
        now = time.monotonic()
        if now - self._last_status < self.status_interval or self.consumer is None:
            return
        self._last_status = now
        assigned = list(self.consumer.assignment())
        lag = {}
        if assigned:
            try:
                ends = self.consumer.end_offsets(assigned)
                for tp in assigned:
                    lag[f"{tp.topic}:{tp.partition}"] = max(0, ends[tp] - self.consumer.position(tp))
            except KafkaError:
                return
        self.store.db["worker_status"].update_one(
            {"_id": f"consumer:{self.instance_id}"},
            {"$set": {"kind": "consumer", "projection": self.projection.name,
                      "generation": self.generation, "lag": lag, "heartbeat": utcnow(),
                      "applied_total": self.applied_total}}, upsert=True)

    def close(self) -> None:
        if self.consumer is not None:
            try:
                self.consumer.close()  # leaves the group at once
            except KafkaError:
                log.debug("consumer close failed", exc_info=True)
            self.consumer = None


def rebuild(settings: Settings, projection: Projection, *, registry: EventRegistry = default_registry,
            progress: Callable[[int, int], None] | None = None, keep_previous: bool = True) -> int:
    """Replay the projection's topics from the beginning into a new generation, up to the
    end offsets seen at the start, then make it active. The old generation serves readers
    until the swap. Returns the new generation."""
    store = projection_store(settings, projection, registry)
    old = store.active_generation()
    new = old + 1
    store.drop_generation(new)  # a previous rebuild that stopped half-way
    store.ensure_generation(new)
    store.meta.update_one({"_id": store.name}, {"$set": {"building": new, "build_started_at": utcnow()}})
    topics = [settings.topic(s) for s in projection.sources]
    kafka_clients.ensure_topics(settings.kafka_bootstrap, topics, settings.topic_partitions)
    consumer = kafka_clients.consumer(settings.kafka_bootstrap, group_id=None,
                                      client_id=f"rebuild-{store.name}", max_poll_records=500)
    try:
        partitions = [TopicPartition(t, p) for t in topics
                      for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        total = sum(ends.values())
        done = 0
        if progress:
            progress(done, total)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batch = consumer.poll(timeout_ms=1000)
            wanted = {tp: [r for r in recs if r.offset < ends[tp]] for tp, recs in batch.items()}
            records = _records({tp: recs for tp, recs in wanted.items() if recs})
            store.apply(records, new)
            done += len(records)
            if progress:
                progress(done, total)
            for tp in list(remaining):
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
                    consumer.pause(tp)
    finally:
        consumer.close()
    store.activate(new)
    if not keep_previous:
        store.drop_generation(old)
    elif old > 1:
        store.drop_generation(old - 1)  # keep one previous generation for rollback
    return new


def redrive(settings: Settings, projection: Projection, *,
            registry: EventRegistry = default_registry) -> tuple[int, int]:
    """Apply the projection's parked records again (after the code that refused them was
    fixed), into the active generation, without moving its offsets. Returns (applied, still
    parked). Records that fail again stay parked. A redriven event lands after the events
    that followed it; for a projection where order matters, rebuild instead."""
    store = projection_store(settings, projection, registry)
    generation = store.active_generation()
    applied = 0
    for doc in list(store.dead_letters.find({"projection": store.name}).sort([("topic", 1), ("partition", 1), ("offset", 1)])):
        record = Record(doc["topic"], doc["partition"], doc["offset"], doc["raw"].encode())
        if store.apply([record], generation, track_offsets=False):
            applied += 1
        if not store.dead_letters.find_one({"_id": doc["_id"], "at": {"$gt": doc["at"]}}):
            store.dead_letters.delete_one({"_id": doc["_id"], "at": doc["at"]})
    return applied, store.dead_letters.count_documents({"projection": store.name})
