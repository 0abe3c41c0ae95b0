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
from datetime import timedelta

from kafka.errors import KafkaError
from pymongo.errors import DuplicateKeyError, PyMongoError

from . import kafka as kafka_clients
from .eventstore import EventStore
from .events import utcnow

log = logging.getLogger(__name__)


def message_from_document(doc: dict) -> bytes:
    body = {
        "event_id": doc["_id"], "type": doc["type"], "schema_version": doc["schema_version"],
        "stream_id": doc["stream_id"], "stream_version": doc["stream_version"],
        "occurred_at": doc["occurred_at"].isoformat(), "recorded_at": doc["recorded_at"].isoformat(),
        "actor": doc["actor"], "correlation_id": doc["correlation_id"],
        "causation_id": doc.get("causation_id"), "position": doc["position"], "data": doc["data"],
    }
    return json.dumps(body, separators=(",", ":")).encode()


class Lease:
    """A time-bound lock document: {_id: name, owner, expires_at}."""

    def __init__(self, collection, name: str, owner: str, ttl: float = 15.0):
        self.collection, self.name, self.owner, self.ttl = collection, name, owner, ttl

    def acquire(self) -> bool:
        now = utcnow()
        try:
            self.collection.find_one_and_update(
                {"_id": self.name, "$or": [{"owner": self.owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "expires_at": now + timedelta(seconds=self.ttl)}},
                upsert=True)
        except DuplicateKeyError:  # someone else holds a live lease
            return False
        return True

    def release(self) -> None:
        self.collection.delete_one({"_id": self.name, "owner": self.owner})


class OutboxRelay:
    def __init__(self, store: EventStore, bootstrap: str, topic: str, *,
                 batch_size: int = 500, producer_factory=None, owner: str | None = None):
        self.store, self.bootstrap, self.topic = store, bootstrap, topic
        self.batch_size = batch_size
        self._producer_factory = producer_factory or (lambda: kafka_clients.producer(bootstrap))
        self._producer = None
        self.lease = Lease(store.db["relay_leases"], topic,
                           owner or f"{socket.gethostname()}:{os.getpid()}:{id(self)}")
        self.published_total = 0
        self.last_failed = False

    def _get_producer(self):
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

    def publish_once(self) -> int:
        """Publish one batch of pending events in position order; advance the checkpoint
        through the last event before the first one the broker did not acknowledge.
        Events after a failure are sent again next time (consumers drop the duplicates),
        so no stream is ever seen out of order."""
        docs = self.store.pending(self.batch_size)
        if not docs:
            return 0
        producer = self._get_producer()
        futures = []
        try:
            for doc in docs:
                futures.append(producer.send(self.topic, key=doc["stream_id"].encode(),
                                             value=message_from_document(doc)))
            producer.flush(timeout=15)
        except KafkaError as err:
            log.warning("relay: broker unavailable (%s); %d events wait", err, len(docs))
        acked = 0
        for future in futures:
            if not (future.is_done and future.succeeded()):
                break
            acked += 1
        self.last_failed = acked < len(docs)
        if self.last_failed:
            self._drop_producer()
        if acked:
            self.store.mark_published_through(docs[acked - 1]["position"])
        self.published_total += acked
        return acked

    def run(self, stop: threading.Event, idle_sleep: float = 0.05) -> None:
        backoff = 0.2
        while not stop.is_set():
            try:
                if not self.lease.acquire():
                    stop.wait(self.lease.ttl / 3)
                    continue
                n = self.publish_once()
                if self.last_failed:
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.2
                if n == 0:
                    stop.wait(idle_sleep)
            except (KafkaError, PyMongoError) as err:
                log.warning("relay: %s; retrying in %.1fs", err, backoff)
                self._drop_producer()
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self._drop_producer()
        try:
            self.lease.release()
        except PyMongoError:
            pass

    def drain(self, timeout: float = 30.0) -> None:
        """Publish until nothing is pending (tests and one-off commands)."""
        deadline = time.monotonic() + timeout
        while self.store.pending(1):
            if time.monotonic() > deadline:
                raise TimeoutError("outbox not drained")
            if self.publish_once() == 0 or self.last_failed:
                time.sleep(0.2)
        self._drop_producer()


def reconcile(store: EventStore, bootstrap: str, topic: str, *, republish: bool = True) -> list[str]:
    """Compare the events marked published with what the topic holds, and publish again the
    ones missing (a broker that lost acknowledged records, as the local one can when it is
    restarted mid-load). Returns the ids that were missing. A republished event lands after
    later events of its stream: rebuild projections where order matters."""
    from kafka import TopicPartition
    on_topic: set[str] = set()
    consumer = kafka_clients.consumer(bootstrap, group_id=None, max_poll_records=1000)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    on_topic.add(json.loads(record.value)["event_id"])
    finally:
        consumer.close()
    through = store.published_through()
    missing = [d for d in store.events.find({"position": {"$lte": through}}).sort("position", 1)
               if d["_id"] not in on_topic]
    if missing and republish:
        producer = kafka_clients.producer(bootstrap)
        try:
            for doc in missing:
                producer.send(topic, key=doc["stream_id"].encode(), value=message_from_document(doc))
            producer.flush(timeout=30)
        finally:
            producer.close()
        log.warning("reconcile %s: published %d missing events again", topic, len(missing))
    return [d["_id"] for d in missing]
