"""Service tier: what the planner asks the store for one booking, on the real local store.
In the busy hour the planner's batches of bookings held transactions open for 10-15 s, and
every other writer of the message book (the announcer, the dispatchers) aborted against them
(issue 14): a booking read its client and their preferences twice and planned twice."""

from __future__ import annotations

import pymongo

from services.notifications.projections import Planner
from shared.events import registry
from shared.outbox import message_from_document
from shared.projections import ProjectionStore, Record
from testkit.kernel import Commands


def records_of(settings, feed, service: str) -> list[Record]:
    store = feed.stores[service]
    topic = settings.topic(service)
    return [
        Record(topic, 0, d["position"], message_from_document(d))
        for d in store.events.find().sort("position", 1)
    ]


def reads_of(listener: Commands, collection: str) -> int:
    return sum(1 for c in listener.commands if c.get("find") == collection)


def test_a_booking_reads_the_client_and_preferences_once_for_its_notices_and_plans_once(
    nsettings, feed
):
    feed.therapist()
    feed.client(channels=("email", "sms"))
    feed.booked(sid="s1")
    listener = Commands()
    mongo = pymongo.MongoClient(nsettings.mongo_uri, tz_aware=True, event_listeners=[listener])
    try:
        store = ProjectionStore(mongo, nsettings.database("notifications"), Planner(), registry)
        generation = store.active_generation()
        store.ensure_generation(generation)
        booking = records_of(nsettings, feed, "scheduling")
        registration = records_of(nsettings, feed, "records")
        assert store.apply(booking[:-1] + registration, generation) == 2  # therapist, client
        listener.commands.clear()

        assert store.apply(booking[-1:], generation) == 1
        book = mongo[nsettings.database("notifications")]["messages"]
        planned = sorted(d["_id"] for d in book.find({"session_id": "s1"}))
        assert [k.split(":")[0] for k in planned] == ["confirmation"] * 2 + ["reminder"] * 2
        clients = f"clients__g{generation}"
        # one look whether the client is known (a booking may come before them), one for
        # their contact; was three (the contact read again for the reminders)
        assert reads_of(listener, clients) == 2, [c.get("find") for c in listener.commands]
        assert reads_of(listener, "preferences") == 1  # was two
        plan_writes = [c for c in listener.commands if c.get("update") == "messages"]
        # one plan of the confirmation and the reminders, one void of other reminders
        assert len(plan_writes) == 2, plan_writes
        assert reads_of(listener, f"sessions__g{generation}") == 0  # the save returns it
    finally:
        mongo.close()
