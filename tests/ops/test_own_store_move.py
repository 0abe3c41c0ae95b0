"""A practice started with `make up` before notifications had a local store of its own keeps
notifications' database on the main store. `make up` now moves it to its own store before
anything starts (deploy/local/stack.py): the message book is not rebuildable, and an empty
book on the new store would have had every message planned, and sent, again."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from deploy.local.stack import move_to_own_stores
from shared.mongo import client as mongo_client


def _old_practice(settings, messages: int = 2500) -> None:
    """Notifications' database on the main store, as before: a message book with indexes."""
    db = mongo_client(settings.mongo_uri)[settings.database("notifications")]
    db["messages"].create_indexes([IndexModel([("status", ASCENDING), ("next_at", ASCENDING)])])
    db["messages"].insert_many(
        [{"_id": f"m{i:05d}", "status": "sent", "next_at": i} for i in range(messages)]
    )
    db["events"].insert_one({"_id": "e1", "stream_id": "notification-m00000", "position": 1})
    db.create_collection("inbox")  # empty, as a practice without alerts yet has it


def test_make_up_moves_notifications_database_from_the_main_store_to_its_own_once(settings):
    own = {"notifications": settings.mongo_uri_of("notifications")}
    assert own["notifications"] != settings.mongo_uri
    name = settings.database("notifications")
    _old_practice(settings)
    main, target = mongo_client(settings.mongo_uri), mongo_client(own["notifications"])
    # a move cut short before: a partial copy on the own store, the main store's still whole
    target[name]["messages"].insert_one({"_id": "m00000", "status": "partial"})

    assert move_to_own_stores(settings.mongo_uri, own, settings.db_prefix) == [name]

    assert name not in main.list_database_names()
    book = target[name]["messages"]
    assert book.count_documents({}) == 2500 and book.count_documents({"status": "sent"}) == 2500
    assert target[name]["events"].find_one({"_id": "e1"})["position"] == 1
    assert "status_1_next_at_1" in book.index_information()
    assert set(target[name].list_collection_names()) == {"messages", "events", "inbox"}
    # started again: nothing on the main store to move, the own store's left as it is
    assert move_to_own_stores(settings.mongo_uri, own, settings.db_prefix) == []
    assert book.count_documents({}) == 2500


def test_a_database_without_a_store_of_its_own_stays_where_it_is(settings):
    _old_practice(settings, messages=3)
    name = settings.database("notifications")
    same = {"notifications": settings.mongo_uri}
    assert move_to_own_stores(settings.mongo_uri, same, settings.db_prefix) == []
    assert move_to_own_stores(settings.mongo_uri, {}, settings.db_prefix) == []
    assert mongo_client(settings.mongo_uri)[name]["messages"].count_documents({}) == 3
