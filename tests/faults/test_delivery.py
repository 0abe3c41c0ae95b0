"""Delivery faults, quick: every event delivered twice, and the events of different streams
(and of two services' topics) interleaved in a shuffled order with each stream's own order
kept — records' client summaries must come out exactly as from one clean delivery."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from services.records.projections import ClientSummaries
from shared import kafka as kafka_clients
from shared.consumer import ProjectionRunner
from shared.events import NewEvent
from shared.outbox import message_from_document
from shared.web import ServiceContext
from testkit.faults import RECEPTION, RecordsLoad, open_tasks, processed_count, summaries
from testkit.plugin import eventually, running

START = datetime(2030, 1, 7, 10, tzinfo=UTC)


def book_sessions(settings, load: RecordsLoad) -> dict[str, str]:
    """In scheduling's own store: a session per client, booked then attended or cancelled."""
    store = ServiceContext("scheduling", settings).store
    expected = {}
    for i, cid in enumerate(load.clients):
        sid = f"s-{cid}"
        facts = {
            "session_id": sid,
            "client_id": cid,
            "therapist_id": "t1",
            "starts_at": START + timedelta(days=i),
            "ends_at": START + timedelta(days=i, minutes=50),
        }
        store.append(
            f"session-{sid}",
            0,
            [
                NewEvent(
                    "SessionBooked",
                    {
                        **facts,
                        "kind": "treatment",
                        "modality": "video",
                        "room": None,
                        "course_id": None,
                        "number": None,
                        "video_link": None,
                    },
                )
            ],
            RECEPTION,
        )
        last = (
            NewEvent("SessionAttended", {**facts, "kind": "treatment"})
            if i % 2
            else NewEvent(
                "SessionCancelled", {**facts, "by": "client", "reason": "unwell", "late": False}
            )
        )
        store.append(f"session-{sid}", 1, [last], RECEPTION)
        expected[sid] = "attended" if i % 2 else "cancelled"
    return expected


def shuffled_merge(streams: list[list], rng: random.Random) -> list:
    """Interleave the streams at random, each stream's items staying in their order."""
    queues = [list(s) for s in streams if s]
    out = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


def produce(settings, messages) -> None:
    producer = kafka_clients.producer(settings.kafka_bootstrap)
    for topic, doc in messages:
        producer.send(topic, key=doc["stream_id"].encode(), value=message_from_document(doc))
    producer.flush()
    producer.close()


def all_streams(settings) -> list[list]:
    """Every stream of records and scheduling as its ordered list of (topic, document)."""
    streams: dict[str, list] = {}
    for service in ("records", "scheduling"):
        topic = settings.topic(service)
        for doc in ServiceContext(service, settings).store.events.find().sort("position", 1):
            streams.setdefault(f"{service}/{doc['stream_id']}", []).append((topic, doc))
    kafka_clients.ensure_topics(
        settings.kafka_bootstrap,
        [settings.topic("records"), settings.topic("scheduling")],
        settings.topic_partitions,
    )
    return list(streams.values())


def converged(settings, load, sessions, total) -> bool:
    statuses = {d["_id"]: d["status"] for d in summaries(settings).reader("sessions").find()}
    return (
        open_tasks(settings) == load.expected()
        and statuses == sessions
        and processed_count(settings) == total
    )


def test_every_event_delivered_twice_is_applied_once(settings):
    load = RecordsLoad(settings, clients=6)
    load.assign(60)
    sessions = book_sessions(settings, load)
    streams = all_streams(settings)
    total = sum(len(s) for s in streams)
    # twice each, the repeat right after and again at the end: a relay that sent a batch
    # twice, and a redelivery after a rebalance
    twice = [m for s in streams for m in s for _ in range(2)]
    produce(settings, twice + [m for s in streams for m in s])
    runner = ProjectionRunner(settings, ClientSummaries())
    with running(runner.run):
        eventually(
            lambda: converged(settings, load, sessions, total),
            timeout=60,
            message="summaries equal one clean delivery",
        )
    assert runner.applied_total == total, "each distinct event applied exactly once"
    assert sum(open_tasks(settings).values()) == 60


def test_streams_interleaved_out_of_order_across_topics_converge(settings):
    load = RecordsLoad(settings, clients=8)
    load.assign(80)
    sessions = book_sessions(settings, load)
    streams = all_streams(settings)
    total = sum(len(s) for s in streams)
    rng = random.Random(20261126)
    order = shuffled_merge(streams, rng)
    natural = [m for s in streams for m in s]
    assert order != natural, "the shuffle changed the cross-stream order"
    # a session's attendance may now precede its client's registration, across topics
    produce(settings, order)
    runner = ProjectionRunner(settings, ClientSummaries())
    with running(runner.run):
        eventually(
            lambda: converged(settings, load, sessions, total),
            timeout=60,
            message="summaries equal the in-order result",
        )
    assert runner.applied_total == total
