"""Outbox relay: publishes a service's pending events to `rapport.<service>`, key = stream id,
and marks them published only after the broker acknowledged them (acks=all, idempotent
producer). While the broker is down commands still succeed; events wait and go out in
per-stream order when it returns. A lease in MongoDB keeps a single active relay per topic
even when several replicas run."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import timedelta

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from . import chime
from . import kafka as kafka_clients
from .backoff import Backoff
from .events import utcnow
from .eventstore import EventStore
from .wakeup import Doorbell

log = logging.getLogger(__name__)
VERIFY_ID = "verify-after-outage"
# how long a running relay may hold what it published before writing its checkpoint: the
# write was one round trip per publish, a sixth of the relays' and a fortieth of all the
# commands the store served in the busy hour (issue 14). A relay restarted within that
# time publishes those events again, and the consumers drop them as the duplicates they
# are (the checkpoint has always been "at least once": shared.consumer).
MARK_EVERY = 0.5


def send_documents(producer: KafkaProducer, topic: str, docs: Iterable[dict]) -> list:
    """Send stored event documents to `topic`, keyed by stream id; returns the futures."""
    return [
        producer.send(topic, key=d["stream_id"].encode(), value=message_from_document(d))
        for d in docs
    ]


def message_from_document(doc: dict) -> bytes:
    body = {
        "event_id": doc["_id"],
        "type": doc["type"],
        "schema_version": doc["schema_version"],
        "stream_id": doc["stream_id"],
        "stream_version": doc["stream_version"],
        "occurred_at": doc["occurred_at"].isoformat(),
        "recorded_at": doc["recorded_at"].isoformat(),
        "actor": doc["actor"],
        "correlation_id": doc["correlation_id"],
        "causation_id": doc.get("causation_id"),
        "position": doc["position"],
        "data": doc["data"],
    }
    return json.dumps(body, separators=(",", ":")).encode()


class Lease:
    """A time-bound lock document: {_id: name, owner, expires_at}."""

    def __init__(self, collection: Collection, name: str, owner: str, ttl: float = 15.0) -> None:
        self.collection, self.name, self.owner, self.ttl = collection, name, owner, ttl
        self._renewed = float("-inf")  # monotonic time of the last successful acquire

    def acquire(self) -> bool:
        """Take or renew the lease. A lease renewed less than a third of its life ago is
        still ours for two thirds of it: no round trip then (an idle relay asked the store
        for its lease on every loop, 20 times a second: issue 14)."""
        if time.monotonic() - self._renewed < self.ttl / 3:
            return True
        started, now = time.monotonic(), utcnow()
        try:
            self.collection.find_one_and_update(
                {"_id": self.name, "$or": [{"owner": self.owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "expires_at": now + timedelta(seconds=self.ttl)}},
                upsert=True,
            )
        except DuplicateKeyError:  # someone else holds a live lease
            self._renewed = float("-inf")
            return False
        self._renewed = started
        return True

    def release(self) -> None:
        self._renewed = float("-inf")
        self.collection.delete_one({"_id": self.name, "owner": self.owner})


class OutboxRelay:
    verify_window = 60.0  # seconds of acknowledged publishes checked after a broker failure

    def __init__(
        self,
        store: EventStore,
        bootstrap: str,
        topic: str,
        *,
        batch_size: int = 500,
        producer_factory: Callable[[], KafkaProducer] | None = None,
        owner: str | None = None,
        partitions: int | None = None,
    ) -> None:
        self.store, self.bootstrap, self.topic = store, bootstrap, topic
        self.partitions = partitions  # create the topic with these before the first publish
        self.batch_size = batch_size
        self._producer_factory = producer_factory or (lambda: kafka_clients.producer(bootstrap))
        self._producer = None
        self.lease = Lease(
            store.db["relay_leases"],
            topic,
            owner or f"{socket.gethostname()}:{os.getpid()}:{id(self)}",
        )
        self.published_total = 0
        self.republished_total = 0
        self.last_failed = False
        # what was acknowledged lately:
        # [(monotonic time, first position, {partition: first offset})]
        self._recent: deque[tuple[float, int, dict[int, int]]] = deque()
        self._outage = (
            False  # a broker error was seen outside publish_once: suspect the recent acks
        )
        self._verify_due = True  # at start, look for a check a previous relay left unfinished
        self._indexed = False  # the events' indexes, made in run() (the store may be down)
        # The checkpoint as this relay last wrote it, while it holds the lease: the next batch
        # starts there without reading the outbox document (a query per publish, issue 14).
        # Only this relay moves the checkpoint while its lease lasts; were another to move it
        # meanwhile, starting lower only publishes again what consumers drop as duplicates.
        self._through: int | None = None
        # a checkpoint published and not written yet (`run` writes it within MARK_EVERY)
        self._unmarked: int | None = None
        self._mark_at = 0.0

    def _get_producer(self):
        if self.partitions:
            kafka_clients.ensure_topics(self.bootstrap, [self.topic], self.partitions)
            self.partitions = None
        if self._producer is None:
            self._producer = self._producer_factory()
        return self._producer

    def _drop_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:  # closing a producer whose broker vanished may itself fail
                log.debug("producer close failed", exc_info=True)
            self._producer = None

    def publish_once(self, *, defer_mark: bool = False) -> int:
        """Publish one batch of pending events in position order; advance the checkpoint
        through the last event before the first one the broker did not acknowledge.
        Events after a failure are sent again next time (consumers drop the duplicates),
        so no stream is ever seen out of order. `defer_mark` (the running relay): the
        checkpoint's write may wait up to MARK_EVERY (`mark_if_due`), unless the broker
        failed."""
        docs = self.store.pending(self.batch_size, after=self._through)
        if not docs:
            return 0
        producer = self._get_producer()
        futures = []
        try:
            for doc in docs:  # one by one: a send that fails keeps the futures before it
                futures += send_documents(producer, self.topic, [doc])
            producer.flush(timeout=15)
        except KafkaError as err:
            log.warning("relay: broker unavailable (%s); %d events wait", err, len(docs))
        acked = 0
        offsets: dict[int, int] = {}
        ends: dict[tuple[str, int], int] = {}  # after the last record acknowledged, a partition
        for future in futures:
            if not (future.is_done and future.succeeded()):
                break
            meta = future.value
            offsets[meta.partition] = min(offsets.get(meta.partition, meta.offset), meta.offset)
            key = (meta.topic, meta.partition)
            ends[key] = max(ends.get(key, 0), meta.offset + 1)
            acked += 1
        self.last_failed = acked < len(docs)
        if acked:
            self._remember(docs[0]["position"], offsets)
            # the consumers of this topic watch the source's outbox (shared.consumer): the
            # broker holds these records now, so they may look before the checkpoint's write,
            # a round trip of the store's that the busy hour's queue makes ~14 ms long, on
            # every hop of every flow (issue 14); with how far each partition now goes, so
            # that they need not ask the broker (shared.chime.published_end)
            chime.announce([self.store.db["outbox"].full_name], ends)
        waiting = self._unmarked is not None
        if acked:
            self._through = self._unmarked = docs[acked - 1]["position"]
        if self.last_failed:
            self._drop_producer()
            # everything acknowledged, in this batch and before it, is written now, so that the
            # check after the outage (positions up to the checkpoint) covers it; the local
            # broker can lose acknowledged records when it restarts (`make faults` lost three
            # that way)
            self.mark()
            self._suspect_recent()
        elif acked and not defer_mark:
            self.mark()
        elif acked and not waiting:  # the first publish since the last write: due in MARK_EVERY
            self._mark_at = time.monotonic() + MARK_EVERY
        self.published_total += acked
        return acked

    def mark(self) -> None:
        """Write the checkpoint through what this relay published (never moves it back)."""
        if self._unmarked is not None:
            self.store.mark_published_through(self._unmarked)
            self._unmarked = None

    def mark_if_due(self) -> float | None:
        """Write the checkpoint if it has waited MARK_EVERY; else how long until it is due
        (None: nothing waits)."""
        if self._unmarked is None:
            return None
        left = self._mark_at - time.monotonic()
        if left > 0:
            return left
        self.mark()
        return None

    # -- after a broker outage: were the last acknowledged records kept? -------------------
    def _remember(self, first_position: int, offsets: dict[int, int]) -> None:
        now = time.monotonic()
        self._recent.append((now, first_position, offsets))
        while self._recent and self._recent[0][0] < now - self.verify_window:
            self._recent.popleft()

    def _suspect_recent(self) -> None:
        """The broker failed: note (durably, so a restarted relay checks too) where the
        records acknowledged in the last `verify_window` seconds start, to check them once
        the broker is back. A clean restart of real Kafka keeps acknowledged records; the
        local broker (noida-db 0.2.3) was seen losing some (infrastructure.md)."""
        self._verify_due = True
        if not self._recent:
            return
        first = min(p for _, p, _ in self._recent) - 1  # checked: positions above it
        offsets: dict[str, int] = {}
        for _, _, batch in self._recent:
            for partition, offset in batch.items():
                offsets[str(partition)] = min(offsets.get(str(partition), offset), offset)
        self._recent.clear()
        doc = self.store.db["outbox"].find_one({"_id": VERIFY_ID}) or {}
        if doc.get("from_position") is not None:
            first = min(first, doc["from_position"])
            for partition, offset in (doc.get("offsets") or {}).items():
                offsets[partition] = min(offsets.get(partition, offset), offset)
        self.store.db["outbox"].update_one(
            {"_id": VERIFY_ID},
            {
                "$set": {
                    "topic": self.topic,
                    "from_position": first,
                    "offsets": offsets,
                    "since": utcnow(),
                }
            },
            upsert=True,
        )

    def verify_after_outage(self) -> int | None:
        """If a broker failure left acknowledged records in doubt, read the topic from where
        they start and publish again the events it no longer holds. Returns how many were
        published again, or None when there was nothing to check."""
        doc = self.store.db["outbox"].find_one({"_id": VERIFY_ID})
        if not doc or doc.get("from_position") is None:
            self._verify_due = False
            return None
        offsets = {int(p): o for p, o in (doc.get("offsets") or {}).items()}
        missing = missing_from_topic(
            self.store,
            self.bootstrap,
            self.topic,
            from_position=doc["from_position"],
            offsets=offsets,
        )
        if missing:
            producer = self._get_producer()
            futures = send_documents(producer, self.topic, missing)
            producer.flush(timeout=15)
            if not all(f.is_done and f.succeeded() for f in futures):
                self._drop_producer()
                raise KafkaTimeoutError("republishing lost records was not acknowledged")
            self.republished_total += len(missing)
            # kept for the operator: these events now follow later events of their streams
            # on the topic, so a projection where order matters should be rebuilt
            self.store.db["outbox_repairs"].insert_one(
                {
                    "topic": self.topic,
                    "at": utcnow(),
                    "count": len(missing),
                    "event_ids": [d["_id"] for d in missing],
                    "streams": sorted({d["stream_id"] for d in missing}),
                }
            )
            log.warning(
                "relay %s: the broker lost %d acknowledged events in an outage; "
                "published them again (listed in outbox_repairs; they follow later "
                "events of their streams: rebuild order-sensitive projections)",
                self.topic,
                len(missing),
            )
        if (
            self.store.db["outbox"]
            .delete_one({"_id": VERIFY_ID, "since": doc["since"]})
            .deleted_count
        ):
            self._verify_due = False  # (a newer outage rewrote it meanwhile: check again)
        return len(missing)

    def run(self, stop: threading.Event, idle_sleep: float = 0.05) -> None:
        """Publish until `stop`. With nothing pending the relay rests until an event is
        inserted (a change stream, shared.wakeup) or a third of its lease has passed (the
        lease is renewed then); without change streams it polls every `idle_sleep`."""
        backoff = Backoff()
        bell = Doorbell(self.store.events, name=f"relay {self.topic}")
        try:
            while not stop.is_set():
                try:
                    ticket = bell.ticket()
                    if not self._indexed:  # here, not at start: a store down then is retried
                        self.store.ensure_indexes()
                        self._indexed = True
                    if self._outage:
                        self.mark()  # acknowledged before the failure: checked after it too
                        self._suspect_recent()
                        self._outage = False
                    if not self.lease.acquire():
                        self.mark()  # what it published is on the topic: never moves back
                        self._through = None  # another relay may move the checkpoint
                        stop.wait(self.lease.ttl / 3)
                        continue
                    n = self.publish_once(defer_mark=True)
                    if self.last_failed:
                        backoff.failed(stop)
                        continue
                    if self._verify_due:
                        self.verify_after_outage()
                    backoff.succeeded()
                    if n < self.batch_size:
                        # everything pending when it looked went out (positions are gap-free
                        # and committed in order: shared.eventstore), and an append since
                        # rings after `ticket`: looking again at once only to find nothing
                        # was three queries per publish (issue 14)
                        rest = self.lease.ttl / 3 if bell.watching else idle_sleep
                        self._rest(bell, ticket, rest, stop)
                    else:
                        self.mark_if_due()
                except (KafkaError, PyMongoError) as err:
                    log.warning("relay: %s; retrying in %.1fs", err, backoff.delay)
                    self._through = None  # read it again once the store answers
                    self._drop_producer()
                    self._outage = self._outage or isinstance(err, KafkaError)
                    backoff.failed(stop)
        finally:
            bell.close()
        self._drop_producer()
        try:
            self.mark()
            self.lease.release()
        except PyMongoError:
            pass

    def _rest(self, bell: Doorbell, ticket: int, rest: float, stop: threading.Event) -> None:
        """Rest until rung after `ticket`, `rest` passes or `stop`, writing the checkpoint
        when it falls due meanwhile (without looking for events again)."""
        deadline = time.monotonic() + rest
        while not stop.is_set():
            due = self.mark_if_due()
            left = deadline - time.monotonic()
            if left <= 0 or bell.wait(ticket, left if due is None else min(left, due), stop):
                return

    def drain(self, timeout: float = 30.0) -> None:
        """Publish until nothing is pending (tests and one-off commands)."""
        deadline = time.monotonic() + timeout
        while self.store.pending(1):
            if time.monotonic() > deadline:
                raise TimeoutError("outbox not drained")
            if self.publish_once() == 0 or self.last_failed:
                time.sleep(0.2)
        self._drop_producer()


def missing_from_topic(
    store: EventStore,
    bootstrap: str,
    topic: str,
    *,
    from_position: int = 0,
    offsets: dict[int, int] | None = None,
) -> list[dict]:
    """The events marked published (position above `from_position`) that the topic does not
    hold. The topic is read from `offsets` (partition -> first offset to read; the others
    are not read) or, without them, from the beginning of every partition."""
    from kafka import TopicPartition

    on_topic: set[str] = set()
    consumer = kafka_clients.consumer(bootstrap, group_id=None, max_poll_records=1000)
    try:
        parts = [
            TopicPartition(topic, p)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
            if offsets is None or p in offsets
        ]
        consumer.assign(parts)
        if offsets is None:
            consumer.seek_to_beginning(*parts)
        else:  # an offset past the end (records lost at the tail) resets to the earliest
            for tp in parts:
                consumer.seek(tp, offsets[tp.partition])
        ends = consumer.end_offsets(parts)
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    on_topic.add(json.loads(record.value)["event_id"])
    finally:
        consumer.close()
    query = {"position": {"$gt": from_position, "$lte": store.published_through()}}
    return [d for d in store.events.find(query).sort("position", 1) if d["_id"] not in on_topic]


def reconcile(
    store: EventStore, bootstrap: str, topic: str, *, republish: bool = True
) -> list[str]:
    """Compare every event marked published with what the topic holds, and publish again the
    ones missing (a broker that lost acknowledged records, as the local one can when it is
    restarted mid-load). Returns the ids that were missing. A republished event lands after
    later events of its stream: rebuild projections where order matters. The relay does
    this by itself for the records acknowledged shortly before a broker failure it saw."""
    missing = missing_from_topic(store, bootstrap, topic)
    if missing and republish:
        producer = kafka_clients.producer(bootstrap)
        try:
            send_documents(producer, topic, missing)
            producer.flush(timeout=30)
        finally:
            producer.close()
        log.warning("reconcile %s: published %d missing events again", topic, len(missing))
    return [d["_id"] for d in missing]
