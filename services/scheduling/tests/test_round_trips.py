"""How many commands a booking and a 16-session course send to the store (issue 14): a
booking's 15 slot claims, or a course's 240, go in one `insert_many`, and a new stream is
not read before its first append. Counted with pymongo's command monitoring on the app's
own client, so a regression back to one write per claim shows as a number, not a feeling."""

from __future__ import annotations

from collections import Counter

import pymongo
import pytest
from pymongo import monitoring

from services.scheduling.app import create_app
from shared import mongo

from .conftest import apply_records_directly, at, monday, register_client


class Commands(monitoring.CommandListener):
    def __init__(self):
        self.seen: Counter = Counter()
        self.on = False

    def started(self, event):
        if self.on:
            self.seen[event.command_name] += 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture
def counted(settings, clock):
    """The scheduling app on a store client of its own whose commands are counted."""
    uri = settings.mongo_uri + ("&" if "?" in settings.mongo_uri else "?") + "appname=roundtrips"
    listener = Commands()
    mongo._clients[uri] = pymongo.MongoClient(uri, tz_aware=True, event_listeners=[listener])
    app = create_app(settings.with_(mongo_uri=uri), clock=clock)
    yield app.test_client(), listener
    mongo._clients.pop(uri).close()


def _post(client, listener, url, headers, body) -> Counter:
    listener.seen.clear()
    listener.on = True
    r = client.post(url, headers=headers, json=body)
    listener.on = False
    assert r.status_code == 201, r.json
    return Counter(listener.seen)


def test_a_booking_and_a_course_take_their_claims_in_one_insert(
    counted, therapist, settings, auth_header
):
    client, listener = counted
    therapist()
    register_client(settings, "c1", "t1")
    apply_records_directly(settings)
    admin = auth_header("admin")
    one = _post(
        client,
        listener,
        "/sessions",
        admin,
        {
            "client_id": "c1",
            "therapist_id": "t1",
            "kind": "treatment",
            "modality": "video",
            "starts_at": at(monday(3), 9).isoformat(),
        },
    )
    course = _post(
        client,
        listener,
        "/courses",
        admin,
        {
            "client_id": "c1",
            "therapist_id": "t1",
            "modality": "video",
            "first_starts_at": at(monday(4), 11).isoformat(),
        },
    )
    # a booking was 15 claim inserts and a stream read more (~27 commands); a course ~270
    assert one["insert"] == 2, one  # the event and the claims
    # the directory's generation, the client (read once: the access check's read gives the
    # status and the room's name; it was read twice), the therapist's stream, the client's key
    assert one["find"] == 4, one
    assert course["insert"] == 2, course  # 17 events in one insert, 240 claims in another
    assert sum(one.values()) <= 14, one
    assert sum(course.values()) <= 16, course


def test_courses_racing_for_the_same_weeks_never_share_a_slot(
    app, therapist, settings, auth_header
):
    """Six 16-session courses for one therapist at the same hour, at once: the claims of one
    insert_many per command still leave each slot to exactly one session."""
    import threading

    from shared.web import ServiceContext

    therapist()
    for n in range(6):
        register_client(settings, f"r{n}", "t1")
    apply_records_directly(settings)
    admin, start = auth_header("admin"), at(monday(3), 10).isoformat()
    barrier, statuses = threading.Barrier(6), []

    def book(n):
        client = app.test_client()
        barrier.wait()
        r = client.post(
            "/courses",
            headers=admin,
            json={
                "client_id": f"r{n}",
                "therapist_id": "t1",
                "modality": "video",
                "first_starts_at": start,
            },
        )
        statuses.append(r.status_code)

    threads = [threading.Thread(target=book, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    events = ServiceContext("scheduling", settings).store.events
    starts = [e["data"]["starts_at"] for e in events.find({"type": "SessionBooked"})]
    assert starts and len(starts) == len(set(starts)), "two sessions hold one slot"
    assert len(starts) == 16, starts  # the 16 wanted Mondays at 10:00, each booked once
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, statuses
