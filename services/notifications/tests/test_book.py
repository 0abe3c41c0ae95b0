"""The message book's planning rules, against the real local store: a fact replayed late
never undoes a newer one, a newer fact revives what an older one voided, and what was sent
(or is being sent) stays as it is, all in the two round trips of `MessageBook.plan`."""

from datetime import UTC, datetime, timedelta

from pymongo import monitoring

from services.notifications.application.book import MessageBook
from shared.mongo import client as mongo_client

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def message(key, text, **extra):
    return {"_id": key, "kind": "confirmation", "channel": "email", "text": text, **extra}


def state(book, key):
    d = book.messages.find_one({"_id": key})
    return d["status"], d["text"], d["as_of"]


def test_planning_follows_the_facts_order_not_the_arrival_order(nsettings):
    db = mongo_client(nsettings.mongo_uri)[nsettings.database("notifications")]
    book = MessageBook(db)
    book.plan([message("a", "v2"), message("b", "first")], T0 + timedelta(minutes=2))
    book.plan([message("a", "v1 late")], T0 + timedelta(minutes=1))  # older fact, replayed
    assert state(book, "a") == ("pending", "v2", T0 + timedelta(minutes=2))

    book.void({"_id": "b"}, "cancelled", T0 + timedelta(minutes=3))
    book.plan([message("b", "stale")], T0 + timedelta(minutes=3))  # not newer than the void
    assert state(book, "b")[0] == "voided"
    book.plan([message("b", "rebooked")], T0 + timedelta(minutes=4))
    assert state(book, "b") == ("pending", "rebooked", T0 + timedelta(minutes=4))
    assert book.messages.find_one({"_id": "b"})["announced"] is False

    book.messages.update_one({"_id": "a"}, {"$set": {"status": "sent"}})
    book.plan([message("a", "v3"), message("c", "new")], T0 + timedelta(minutes=5))
    assert state(book, "a") == ("sent", "v2", T0 + timedelta(minutes=2))
    assert state(book, "c") == ("pending", "new", T0 + timedelta(minutes=5))
    assert book.messages.find_one({"_id": "c"})["attempts"] == 0


class Commands(monitoring.CommandListener):
    def __init__(self):
        self.names = []

    def started(self, event):
        self.names.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_a_fact_planning_four_messages_costs_two_round_trips(nsettings):
    import pymongo

    seen = Commands()
    mongo = pymongo.MongoClient(nsettings.mongo_uri, event_listeners=[seen], tz_aware=True)
    try:
        book = MessageBook(mongo[nsettings.database("notifications")])
        planned = [message(f"risk:{i}", "alert") for i in range(4)]
        book.plan(planned, T0)
        assert seen.names == ["find", "update"]
        assert book.messages.count_documents({"_id": {"$in": [m["_id"] for m in planned]}}) == 4
    finally:
        mongo.close()
