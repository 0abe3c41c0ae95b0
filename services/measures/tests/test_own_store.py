"""Measures' database on a store of its own, as `make up` and the bench run it
(deploy/local/infra.py `own_stores`): the local store runs one transaction's statement at a
time, and the measures board's round trips waited behind the other services' batches there
(issue 14, session 43). The service keeps its database there, reads the clients' keys from
the main store, and follows scheduling's bookings, whose events stay on the main store."""

from datetime import timedelta

from services.measures.domain import request_id_for, request_stream
from shared.mongo import client as mongo_client
from testkit.plugin import eventually, service_workers

from .support import Upstream, app, booked, now, register_client  # noqa: F401


def test_measures_keeps_its_database_on_its_own_store_and_follows_bookings_from_the_main_one(
    settings, app, workers
):
    own, main = settings.mongo_uri_of("measures"), settings.mongo_uri
    assert own != main, "the tests run measures on a store of its own, as make up does"
    workers.start(*service_workers(settings, "measures"))
    records, scheduling = Upstream(settings, "records"), Upstream(settings, "scheduling")
    register_client(records, "emma", "t-1", "Emma")
    scheduling.publish("session-s1", booked("s1", "emma", "t-1", now() + timedelta(days=3)))

    store = app.extensions["rapport"].store  # measures' own event store
    stream = request_stream(request_id_for("s1"))
    eventually(
        lambda: [e.type for e in store.load(stream)] == ["QuestionnaireRequested"],
        message="the booking on the main store never became a request on measures' own",
    )
    measures, keys = settings.database("measures"), settings.database("keys")
    on_own = set(mongo_client(own).list_database_names())
    on_main = set(mongo_client(main).list_database_names())
    assert measures in on_own and measures not in on_main
    assert keys in on_main and keys not in on_own
    assert settings.database("scheduling") in on_main and settings.database("records") in on_main
