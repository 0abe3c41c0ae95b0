"""A service projection (records' client summaries, fed by scheduling's SessionBooked) at
growing sizes: append, read_all, relay, the consumer pipeline vs raw kafka-python
consumption of the same topic, the projection rebuild vs raw insert_many of the documents it
wrote, and indexed query latency on the projection as its collection grows."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import timedelta

from kafka import TopicPartition
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError

from services.records.projections import ClientSummaries
from shared import kafka as kafka_clients
from shared.consumer import ProjectionRunner, rebuild
from shared.events import Event, NewEvent, new_id, utcnow
from shared.eventstore import StreamAppend
from shared.projections import snapshot
from shared.run import make_relay
from shared.web import ServiceContext
from testkit.faults import RECEPTION

from .common import Report, Timer, drop, percentile, session_booked

SIZES = [int(s) for s in os.environ.get("BENCH_SCALE_SIZES", "10000,100000").split(",") if s]
# sessions per client, whatever the size: a practice grows by clients, and an IPT client has
# a course of 16 and a few boosters. (At 500 clients, 100k sessions were 200 each, and the
# local store fetches every index match before applying a query's limit: the query's time
# followed the matches per client, 1.0-1.4 ms at 20 and 2.5 ms at 80, not the collection's size.)
CLIENT_SESSIONS = 20
# from this size on the events are bulk-loaded (_bulk_load): appended 100 per command, 1M
# events took about 18 minutes before anything was measured
BULK_FROM = int(os.environ.get("BENCH_SCALE_BULK_FROM", "1000000"))


def _booked(i: int, now) -> NewEvent:
    starts = now + timedelta(days=7, minutes=i)
    return session_booked(f"sb{i}", f"sc{i // CLIENT_SESSIONS}", "t1", starts)


def _append(store, n: int, start: int) -> float:
    """n SessionBooked, each its own stream, 100 streams per command (one transaction)."""
    now, t = utcnow(), Timer()
    with t.run():
        for base in range(start, start + n, 100):
            appends = [
                StreamAppend(f"session-sb{i}", 0, [_booked(i, now)])
                for i in range(base, min(base + 100, start + n))
            ]
            store.append_streams(appends, RECEPTION)
    return n / t.seconds


def _bulk_load(store, n: int, start: int, chunk: int = 10_000) -> float:
    """Setup for the sizes from BULK_FROM on (issue 14 allows it for 1M): the same
    SessionBooked documents, written straight into the events collection with gap-free
    positions taken from the counter, `chunk` per insert_many, without a transaction per
    command. Nothing else appends to this store meanwhile."""
    now, t = utcnow(), Timer()
    with t.run():
        for base in range(start, start + n, chunk):
            count = min(chunk, start + n - base)
            counter = store.counters.find_one_and_update(
                {"_id": "events"},
                {"$inc": {"seq": count}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            first = counter["seq"] - count
            # the chunk's first event is validated and serialised as an append would; the
            # others differ from it only in these four fields (marshmallow for each of a
            # million events alone took longer than appending them)
            type_, version, data, template, _ = store._prepare(_booked(base, now))
            docs = []
            for offset, i in enumerate(range(base, base + count), start=1):
                facts = _booked(i, now).data
                sealed = {
                    **template,
                    "session_id": facts["session_id"],
                    "client_id": facts["client_id"],
                    "starts_at": facts["starts_at"].isoformat(),
                    "ends_at": facts["ends_at"].isoformat(),
                }
                event = Event(
                    event_id=new_id(),
                    type=type_,
                    schema_version=version,
                    stream_id=f"session-sb{i}",
                    stream_version=1,
                    occurred_at=now,
                    recorded_at=now,
                    actor=RECEPTION.actor,
                    correlation_id=RECEPTION.correlation_id,
                    causation_id=None,
                    data=data,
                    position=first + offset,
                )
                docs.append(store._document(event, sealed))
            store.events.insert_many(docs, ordered=False)
    return n / t.seconds


def _raw_consume(settings, topic: str) -> float:
    consumer = kafka_clients.consumer(settings.kafka_bootstrap, group_id=None, max_poll_records=500)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    ends, seen, t = consumer.end_offsets(parts), 0, Timer()
    with t.run():
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for recs in consumer.poll(timeout_ms=500).values():
                for rec in recs:
                    json.loads(rec.value)
                    seen += 1
    consumer.close()
    return seen / t.seconds


def _live(settings, total: int) -> float:
    runner = ProjectionRunner(settings, ClientSummaries())
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    t = Timer()
    with t.run():
        thread.start()
        while runner.applied_total < total:
            time.sleep(0.02)
    stop.set()
    thread.join(timeout=30)
    return total / t.seconds


def _query_latency(reader, clients: int, samples: int = 300) -> tuple[float, float]:
    out = []
    for i in range(samples):
        start = time.perf_counter()
        list(reader.find({"client_id": f"sc{(i * 7) % clients}", "status": "booked"}).limit(20))
        out.append((time.perf_counter() - start) * 1000)
    return percentile(out, 50), percentile(out, 99)


def _insert_many(collection, docs) -> None:
    """insert_many; a driver retry whose first attempt had landed reports duplicate _ids
    (seen on the loaded local store): those documents are in, which is all we time."""
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as err:
        if any(e["code"] != 11000 for e in err.details["writeErrors"]):
            raise


def _rebuild(settings, projection_store, total: int) -> tuple[float, float]:
    t = Timer()
    with t.run():
        rebuild(settings, ClientSummaries())
    docs = snapshot(projection_store.reader("sessions"))
    raw = projection_store.db["raw_insert_many"]
    raw.drop()
    r = Timer()
    with r.run():
        for i in range(0, len(docs), 5000):
            _insert_many(
                raw, [{k: v for k, v in d.items() if k != "_id"} for d in docs[i : i + 5000]]
            )
            _insert_many(raw, [{"marker": d["_id"]} for d in docs[i : i + 5000]])
    return total / t.seconds, total / r.seconds


def run(settings, report: Report) -> None:
    try:
        _run(settings, report)
    finally:
        drop(settings, wipe=max(SIZES, default=0) >= BULK_FROM)


def _run(settings, report: Report) -> None:
    store = ServiceContext("scheduling", settings).store
    topic = settings.topic("scheduling")
    kafka_clients.ensure_topics(
        settings.kafka_bootstrap, [topic, settings.topic("records")], settings.topic_partitions
    )
    projection = ServiceContext("records", settings).projection(ClientSummaries())
    done, first = 0, True
    for size in SIZES:
        added = size - done
        bulk = size >= BULK_FROM
        append_rate = (_bulk_load if bulk else _append)(store, added, done)
        done = size
        t = Timer()
        with t.run():
            read = sum(1 for _ in store.read_all())
        relay = Timer()
        with relay.run():
            make_relay(settings, "scheduling").drain(timeout=3600)
        label = f"{size // 1000}k"
        if bulk:
            report.add(f"[{label}] bulk load (setup, insert_many)", append_rate, "events/s")
        else:
            report.add(f"[{label}] append (100 events/command)", append_rate, "events/s")
        report.add(f"[{label}] read_all", read / t.seconds, "events/s")
        report.add(
            f"[{label}] relay publish + mark",
            added / relay.seconds,
            "events/s",
            note=f"the {added} events appended at this size",
        )
        if first:  # the live pipeline once; rebuild (the same apply path) at every size
            raw = _raw_consume(settings, topic)
            report.add(
                f"[{label}] records summaries consumer",
                _live(settings, size),
                "events/s",
                "raw kafka-python poll + json decode",
                raw,
                note="includes group join",
            )
            first = False
        rebuild_rate, insert_rate = _rebuild(settings, projection, size)
        report.add(
            f"[{label}] records summaries rebuild",
            rebuild_rate,
            "events/s",
            "raw insert_many of its docs (+markers)",
            insert_rate,
        )
        p50, p99 = _query_latency(projection.reader("sessions"), size // CLIENT_SESSIONS)
        report.add(
            f"[{label}] summary sessions query p50",
            p50,
            "ms",
            note=f"indexed client_id+status, {CLIENT_SESSIONS} sessions per client",
        )
        report.add(f"[{label}] summary sessions query p99", p99, "ms")
        print(f"scale: {label} done", flush=True)
        report.print()  # as each size finishes: the larger ones may not fit a session
