"""Notifications' database on a store of its own, as `make up` and the bench run it
(deploy/local/infra.py `own_stores`): the local store runs one command at a time, and the
message book was half of its work, so every flow queued behind it (issue 14). The service
keeps its database there, and still reads the clients' keys from the main store."""

from datetime import UTC, datetime, timedelta

from shared.mongo import client as mongo_client

from .conftest import wait


def test_notifications_keeps_its_database_on_its_own_store_and_the_keys_stay_on_the_main_one(
    running_service, feed, mail, nsettings, book
):
    own, main = nsettings.mongo_uri_of("notifications"), nsettings.mongo_uri
    assert own != main, "the tests run notifications on a store of its own, as make up does"
    feed.therapist()
    feed.client(channels=("email",))  # the address sealed with the client's key (keys: main)
    feed.booked(starts=datetime.now(UTC) + timedelta(hours=3))
    wait(lambda: any(m["Subject"].startswith("Reminder") for m in mail.to("c1@client.test")))

    notifications, keys = nsettings.database("notifications"), nsettings.database("keys")
    on_own = set(mongo_client(own).list_database_names())
    on_main = set(mongo_client(main).list_database_names())
    assert notifications in on_own and notifications not in on_main
    assert keys in on_main and keys not in on_own
    assert nsettings.database("scheduling") in on_main  # the booking's source: main store
    # the confirmation and the reminder: a message is marked sent after its mail is accepted
    wait(lambda: book.count_documents({"status": "sent"}) >= 2)
