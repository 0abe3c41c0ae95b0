"""A tiny event vocabulary and projection used only by the kernel tests."""

from marshmallow import Schema, fields
from pymongo import IndexModel, monitoring

from shared.events import Actor, EventRegistry
from shared.eventstore import EventStore, Metadata
from shared.mongo import client as mongo_client
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
    batched = True  # one bulk_write per collection per batch (shared.projections)
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
    """The names of the commands a client sent, in order (for counting round trips)."""

    def __init__(self):
        self.names: list[str] = []

    def started(self, event):
        self.names.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass
