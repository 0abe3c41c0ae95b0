"""A tiny event vocabulary and projection used by the kernel tests, and a command listener
that counts what a store client sent (the services' stream-load tests use it too)."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pymongo
from marshmallow import Schema, fields
from pymongo import IndexModel, monitoring

import shared.mongo
from shared.events import Actor, EventRegistry, NewEvent
from shared.eventstore import EventStore, Metadata
from shared.mongo import client as mongo_client
from shared.outbox import OutboxRelay
from shared.projections import Projection

reg = EventRegistry()


@reg.event("CounterOpened", 1)
class CounterOpenedV1(Schema):
    name = fields.String(required=True)


@reg.event("CounterIncremented", 1)
class CounterIncrementedV1(Schema):
    by = fields.Integer(required=True)


@reg.event("CounterIncremented", 2)
class CounterIncrementedV2(Schema):
    by = fields.Integer(required=True)
    reason = fields.String(required=True)


@reg.upcaster("CounterIncremented", from_version=1)
def _incremented_v1_to_v2(data: dict) -> dict:
    return {**data, "reason": "unspecified"}


class Totals(Projection):
    """Per stream: how many increments and their sum, in order (a list of stream versions)."""

    service = "kernel"
    name = "totals"
    batched = True  # the batch's writes combined and sent together (shared.projections)
    sources = ("kernel",)
    collections = {"totals": [IndexModel("name")]}

    def on_CounterOpened(self, event, view):
        view["totals"].update_one(
            {"_id": event.stream_id},
            {"$set": {"name": event.data["name"]}, "$setOnInsert": {"sum": 0, "versions": []}},
            upsert=True,
        )

    def on_CounterIncremented(self, event, view):
        view["totals"].update_one(
            {"_id": event.stream_id},
            {"$inc": {"sum": event.data["by"]}, "$push": {"versions": event.stream_version}},
            upsert=True,
        )


META = Metadata(actor=Actor("tester", "clinical_lead"), correlation_id="corr-1")


def kernel_store(settings) -> EventStore:
    store = EventStore(mongo_client(settings.mongo_uri), settings.database("kernel"), reg)
    store.ensure_indexes()
    return store


class Commands(monitoring.CommandListener):
    """The commands a client sent, in order (for counting round trips): their names, and
    the documents themselves for a test that asks what a command read; and how many
    documents each find answered, for a test that asks what a look read."""

    def __init__(self):
        self.names: list[str] = []
        self.commands: list[dict] = []
        # for each find answered: (its collection, the documents of its first batch)
        self.found: list[tuple[str, int]] = []

    def started(self, event):
        self.names.append(event.command_name)
        self.commands.append(dict(event.command))

    def succeeded(self, event):
        cursor = event.reply.get("cursor") if event.command_name == "find" else None
        if isinstance(cursor, dict):
            collection = str(cursor.get("ns", "")).split(".", 1)[-1]
            self.found.append((collection, len(cursor.get("firstBatch") or [])))

    def failed(self, event):
        pass


def writes_to(commands: list[dict], collection: str) -> list[tuple[str, dict]]:
    """The writes to `collection` (its name, without the database) among the commands heard,
    in order, whether they went as insert/update/delete commands or inside a `bulkWrite`
    (shared.combine.send): ("insert", document), ("update", {"q", "u", "upsert"}) or
    ("delete", {"q"})."""
    out: list[tuple[str, dict]] = []
    for c in commands:
        if c.get("insert") == collection:
            out += [("insert", d) for d in c["documents"]]
        elif c.get("update") == collection:
            out += [("update", u) for u in c["updates"]]
        elif c.get("delete") == collection:
            out += [("delete", d) for d in c["deletes"]]
        elif "bulkWrite" in c:
            names = [ns["ns"].split(".", 1)[1] for ns in c["nsInfo"]]
            for op in c["ops"]:
                kind = next(k for k in ("insert", "update", "delete") if k in op)
                if names[op[kind]] != collection:
                    continue
                if kind == "insert":
                    out.append(("insert", op["document"]))
                elif kind == "update":
                    u = {"q": op["filter"], "u": op["updateMods"], "upsert": op.get("upsert")}
                    out.append(("update", u))
                else:
                    out.append(("delete", {"q": op["filter"]}))
    return out


@contextmanager
def heard_client(uri: str) -> Iterator[tuple[pymongo.MongoClient, Commands]]:
    """A store client of its own whose commands are heard (Commands), closed afterwards."""
    heard = Commands()
    mongo = pymongo.MongoClient(uri, tz_aware=True, event_listeners=[heard])
    try:
        yield mongo, heard
    finally:
        mongo.close()


def listened_settings(settings, monkeypatch, name: str):
    """(settings, Commands): a copy of `settings` whose store client records every command
    it sends. The copy's own URI gets its own client in shared.mongo's per-process cache, so
    only what uses these settings is heard; the client is dropped from the cache after the
    test (monkeypatch). A database's own store (Settings.mongo_uris) is heard the same way,
    by the same listener."""
    listener = Commands()
    ours = replace(
        settings,
        mongo_uri=f"{settings.mongo_uri}&appName={name}",
        mongo_uris={db: f"{uri}&appName={name}" for db, uri in settings.mongo_uris.items()},
    )
    for uri in ours.store_uris():
        mongo = pymongo.MongoClient(uri, tz_aware=True, event_listeners=[listener])
        monkeypatch.setitem(shared.mongo._clients, uri, mongo)
    return ours, listener


def stream_reads(listener: Commands, stream_id: str) -> tuple[int, int]:
    """(loads, all reads) of one stream in an event store, from the commands heard. A load
    reads the whole stream; any other read (`limit`: the last event, as an append without an
    expected version reads it) counts only among all reads."""
    loads = reads = 0
    for command in listener.commands:
        if command.get("find") == "events":
            query = command.get("filter") or {}
        elif command.get("aggregate") == "events":
            query = next((s["$match"] for s in command.get("pipeline", []) if "$match" in s), {})
        else:
            continue
        if query.get("stream_id") != stream_id:
            continue
        reads += 1
        loads += command.get("limit") is None
    return loads, reads


@contextmanager
def idle_relay(settings, lease_ttl: float = 15.0) -> Iterator[tuple[EventStore, "Commands"]]:
    """A relay running in a thread on a store whose commands `listener` counts, once its
    first event is published and it has been idle a second: (store, listener), with the
    listener's count started afresh. The relay stops on leaving. It rests a third of
    `lease_ttl` between two looks of its own (a test counting looks makes that longer than
    itself, so the timer's look cannot fall inside it)."""
    from .plugin import eventually

    listener = Commands()
    mongo = pymongo.MongoClient(settings.mongo_uri, tz_aware=True, event_listeners=[listener])
    store = EventStore(mongo, settings.database("kernel"), reg)
    store.ensure_indexes()
    relay = OutboxRelay(
        store,
        settings.kafka_bootstrap,
        settings.topic("kernel"),
        partitions=settings.topic_partitions,
    )
    relay.lease.ttl = lease_ttl
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        store.append("c-1", 0, [NewEvent("CounterOpened", {"name": "one"})], META)
        eventually(lambda: store.published_through() == 1, timeout=30, message="first published")
        time.sleep(1.0)
        listener.names.clear()
        yield store, listener
    finally:
        stop.set()
        thread.join(timeout=30)
        mongo.close()
