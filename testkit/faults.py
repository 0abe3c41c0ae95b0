"""What the fault cases share: a load of records' own events whose projection effect is
*not* idempotent (each TaskAssigned adds one to the client's `open_tasks`), so an event
applied twice shows as a wrong count, and one lost shows as a missing one; and a reader
of a whole topic."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import date

from kafka import TopicPartition

from services.records.projections import ClientSummaries
from shared import consistency
from shared import kafka as kafka_clients
from shared.events import Actor, NewEvent
from shared.eventstore import Metadata
from shared.projections import Projection
from shared.web import ServiceContext

RECEPTION = Metadata(actor=Actor("reception-user", "admin"), correlation_id="faults")
THERAPIST = Metadata(actor=Actor("therapist-t1", "therapist"), correlation_id="faults")


def registered(client_id: str, therapist_id: str = "t1") -> NewEvent:
    return NewEvent(
        "ClientRegistered",
        {
            "client_id": client_id,
            "given_name": "Emma",
            "family_name": f"Fault{client_id}",
            "date_of_birth": date(1980, 1, 2),
            "email": f"{client_id}@client.test",
            "phone": None,
            "preferred_modality": "video",
            "reminder_channels": ["email"],
            "therapist_id": therapist_id,
            "referral_source": "self",
            "gp": None,
            "nhs_number": None,
        },
    )


def task(client_id: str, n: int) -> NewEvent:
    return NewEvent(
        "TaskAssigned",
        {
            "client_id": client_id,
            "task_id": f"{client_id}-task-{n}",
            "description": "interpersonal inventory homework",
            "due_at": None,
            "session_id": None,
        },
    )


class RecordsLoad:
    """Clients in records' own store, then tasks appended one command at a time."""

    def __init__(self, settings, clients: int = 10):
        self.settings = settings
        self.store = ServiceContext("records", settings).store
        self.clients = [f"c{i:03d}-{uuid.uuid4().hex[:6]}" for i in range(clients)]
        self.tasks: Counter = Counter()
        self.versions: dict[str, int] = {}
        for cid in self.clients:
            self.store.append(cid, 0, [registered(cid)], RECEPTION)
            self.versions[cid] = 1

    def assign(self, n: int, per_command: int = 1) -> int:
        """Append `n` commands round-robin over the clients; returns events appended."""
        appended = 0
        for i in range(n):
            cid = self.clients[i % len(self.clients)]
            events = [task(cid, self.versions[cid] + k) for k in range(per_command)]
            self.store.append(cid, self.versions[cid], events, THERAPIST)
            self.versions[cid] += per_command
            self.tasks[cid] += per_command
            appended += per_command
        return appended

    def event_count(self) -> int:
        return self.store.events.count_documents({})

    def expected(self) -> dict[str, int]:
        """open_tasks per client, from the store (the source of truth)."""
        counts = Counter(
            d["data"]["client_id"]
            for d in self.store.events.find({"type": "TaskAssigned"}, {"data.client_id": 1})
        )
        return {cid: counts.get(cid, 0) for cid in self.clients}


def summaries(settings):
    return ServiceContext("records", settings).projection(ClientSummaries())


def open_tasks(settings) -> dict[str, int]:
    reader = summaries(settings).reader("clients")
    return {d["_id"]: d.get("open_tasks", 0) for d in reader.find({}, {"open_tasks": 1})}


def processed_count(settings, projection: Projection | None = None) -> int:
    """How many distinct events records' client summaries (or another projection of
    records: active generation) have applied: the positions it has seen of each source
    (shared.consistency), plus the ids it kept of events whose positions could not tell
    (shared.projections)."""
    store = (
        summaries(settings)
        if projection is None
        else ServiceContext("records", settings).projection(projection)
    )
    key = f"{store.name}:g{store.active_generation()}"
    seen = 0
    for doc in store.db[consistency.PROGRESS].find({"_id": {"$regex": f"^{key}:"}}):
        first = doc.get("exact_from", 1)
        ranges = [[first, doc.get("through", 0)], *doc.get("ahead", [])]
        seen += sum(max(0, last - max(start, first) + 1) for start, last in ranges)
    return seen + store.processed.count_documents({"_id": {"$regex": f"^{key}:"}})


def read_topic(settings, topic: str) -> list[dict]:
    """Every record of a topic (all partitions, from the start), decoded, in partition order."""
    kafka_clients.ensure_topics(settings.kafka_bootstrap, [topic], settings.topic_partitions)
    consumer = kafka_clients.consumer(
        settings.kafka_bootstrap, group_id=None, max_poll_records=2000
    )
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out = []
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=1000).values():
                out.extend(json.loads(r.value) for r in records)
        return out
    finally:
        consumer.close()


def per_stream_order_kept(messages: list[dict], repaired: set[str] = frozenset()) -> bool:
    """After dropping repeats, each stream's versions are 1, 2, 3, ... in topic order.
    Events a relay published again after the broker lost them (`repaired`, from
    `outbox_repairs`) necessarily follow later events of their stream; the others must
    still be in order."""
    seen: dict[str, list[int]] = {}
    dropped: dict[str, set[int]] = {}
    for m in messages:
        if m["event_id"] in repaired:
            dropped.setdefault(m["stream_id"], set()).add(m["stream_version"])
            continue
        versions = seen.setdefault(m["stream_id"], [])
        if m["stream_version"] not in versions:
            versions.append(m["stream_version"])
    return all(
        v
        == [
            n for n in range(1, len(v) + len(dropped.get(s, ())) + 1) if n not in dropped.get(s, ())
        ]
        for s, v in seen.items()
    )


def repaired_events(store) -> set[str]:
    """Events the relay published again because the broker lost them (shared/outbox.py)."""
    return {i for d in store.db["outbox_repairs"].find() for i in d["event_ids"]}


def release_dead_transactions(settings) -> None:
    """Work around a gap of the local store (SecantusDB 0.7.0b3): a client SIGKILLed inside a
    transaction leaves it open holding its document locks, and a later writer of those
    documents waits on them without end. The store aborts transactions idle for 60 s, but
    only when some client touches its transaction registry. So: wait out the 60 s, then
    start and commit a trivial transaction. Real MongoDB aborts such a transaction itself
    (transactionLifetimeLimitSeconds=60) and a conflicting writer retries; with
    RAPPORT_TEST_STACK=docker this does nothing."""
    from shared.mongo import client as mongo_client
    from shared.mongo import in_transaction
    from testkit.plugin import STACK

    if STACK == "docker":
        return
    time.sleep(61)
    mongo = mongo_client(settings.mongo_uri)
    probe = mongo[settings.database("faults")]["registry_probe"]
    in_transaction(
        mongo,
        lambda s: probe.update_one({"_id": "probe"}, {"$inc": {"n": 1}}, upsert=True, session=s),
    )
