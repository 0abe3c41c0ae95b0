"""Service tier (issue 17): the client's video link is a credential to their room. The
planner keeps copies of it (the session it knows, the confirmation and reminder it plans);
each is sealed under the client's key, so crypto-shredding the client leaves no readable
link anywhere in the notifications store, while a message due before that still shows it."""

import json
from datetime import UTC, datetime, timedelta

from shared.crypto import cipher_for
from shared.mongo import client as mongo_client

from ..domain.plans import VIDEO_LINK
from .conftest import wait

LINK = "https://meet.test/room-s1"


def _documents_holding(db, text: str) -> list[str]:
    """Every stored document (any collection, any projection generation) whose stored form
    contains `text`, named by collection and id."""
    found = []
    for name in db.list_collection_names():
        for doc in db[name].find():
            if text in json.dumps(doc, default=str):
                found.append(f"{name}/{doc.get('_id')}")
    return found


def test_the_stored_video_link_is_sealed_and_unreadable_after_shredding(
    running_service, feed, mail, nsettings
):
    feed.therapist()
    feed.client(channels=("email",))
    feed.booked(starts=datetime.now(UTC) + timedelta(days=3))
    wait(lambda: mail.to("c1@client.test"), message="the confirmation")
    assert LINK in mail.to("c1@client.test")[0].get_content()  # opened to be sent

    db = mongo_client(nsettings.mongo_uri_of("notifications"))[nsettings.database("notifications")]
    messages = list(db["messages"].find({"client_id": "c1", "kind": "reminder"}))
    assert messages, "the reminder is planned"
    sealed = messages[0]["context"]["video_link"]
    assert sealed["$enc"] == 1 and sealed["kid"] == "c1"
    assert _documents_holding(db, "room-s1") == []  # no copy in plain text, even before

    cipher = cipher_for(nsettings)
    assert cipher.open_value(sealed, VIDEO_LINK) == LINK
    cipher.keys.destroy("c1")
    assert cipher.open_value(sealed, VIDEO_LINK) is None
    sessions = [
        doc["video_link"]
        for name in db.list_collection_names()
        if "sessions" in name
        for doc in db[name].find({"client_id": "c1"})
    ]
    assert sessions and all(cipher.open_value(s, VIDEO_LINK) is None for s in sessions)


def test_a_link_for_a_client_already_shredded_is_kept_by_no_one_and_stops_nothing(
    running_service, feed, mail, nsettings
):
    """A fact about a client whose key is gone (a late event; a rebuild after disposal reads
    the placeholder) cannot be sealed: the planner keeps no link, and the fact still applies."""
    feed.therapist()
    feed.client(channels=("email",))
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    feed.booked(starts=starts)
    wait(lambda: mail.to("c1@client.test"), message="the confirmation")
    cipher_for(nsettings).keys.destroy("c1")
    moved = starts + timedelta(hours=2)
    feed.rescheduled(
        starts,
        moved,
        reason=None,
        video_link="https://meet.test/room-s1-moved",
        video_room="room-s1-moved",
    )
    db = mongo_client(nsettings.mongo_uri_of("notifications"))[nsettings.database("notifications")]

    def moved_session():
        for name in db.list_collection_names():
            if "sessions" in name:
                doc = db[name].find_one({"_id": "s1", "starts_at": moved})
                if doc:
                    return doc
        return None

    doc = wait(moved_session, message="the move applied")
    assert doc["video_link"] is None
    assert _documents_holding(db, "room-s1-moved") == []
