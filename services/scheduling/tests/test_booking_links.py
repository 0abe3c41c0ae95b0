"""Booking links: the rules given/when/then (pure), and the service on the real store: reception
offers an enquirer three times, the token exists only for services and never in an event,
the person books one, the link books once, a time taken meanwhile is refused with the same
claims as a staff booking (also when two people race for it), and an expired link is gone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta

import pytest

from services.scheduling.domain.booking_link import (
    IssueBookingLink,
    UseBookingLink,
    booking_link,
)
from services.scheduling.domain.diary import Availability, Hours
from services.scheduling.domain.therapist import TherapistState
from shared.domain import Conflict, Invalid, NotFound
from shared.events import NewEvent
from testkit.given import given

from .conftest import at, monday, register_client

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
T1 = TherapistState(
    therapist_id="t1",
    name="Ann",
    modalities=("video", "telephone"),
    availability=Availability(
        weekly_hours=(Hours(0, time(9), time(17)), Hours(1, time(9), time(17)))
    ),
)
TIMES = (NOW.replace(hour=10), NOW.replace(hour=11) + timedelta(days=1))
ISSUED = NewEvent(
    "BookingLinkIssued",
    {
        "link_id": "l1",
        "client_id": "c1",
        "enquiry_id": "e1",
        "therapist_id": "t1",
        "kind": "assessment",
        "modality": "telephone",
        "room": None,
        "starts": list(TIMES),
        "expires_at": TIMES[-1],
    },
)


def issue(**changes):
    fields = {
        "link_id": "l1",
        "client_id": "c1",
        "therapist": T1,
        "kind": "assessment",
        "modality": "telephone",
        "starts": TIMES,
        "now": NOW,
        "enquiry_id": "e1",
    }
    return IssueBookingLink(**{**fields, **changes})


def test_a_link_offers_bookable_times_and_expires_by_the_last_of_them():
    given(booking_link).when(issue()).then([ISSUED])


def test_a_link_offers_no_time_the_therapist_cannot_see_anyone():
    sunday = NOW.replace(hour=10) + timedelta(days=6)
    err = given(booking_link).when(issue(starts=(TIMES[0], sunday))).then_raises(Invalid)
    assert err.field == "starts.1"
    err = given(booking_link).when(issue(modality="face_to_face")).then_raises(Invalid)
    given(booking_link).when(issue(starts=())).then_raises(Invalid, "1 to 10")


def test_the_link_books_once_and_only_a_time_it_offered():
    used = NewEvent(
        "BookingLinkUsed",
        {
            "link_id": "l1",
            "client_id": "c1",
            "session_id": "s1",
            "starts_at": TIMES[0],
            "used_at": NOW,
        },
    )
    given(booking_link, [ISSUED]).when(UseBookingLink("s1", TIMES[0], NOW)).then([used])
    given(booking_link, [ISSUED]).when(
        UseBookingLink("s1", TIMES[0] + timedelta(hours=2), NOW)
    ).then_raises(Invalid, "offered")
    given(booking_link, [ISSUED, used]).when(UseBookingLink("s2", TIMES[1], NOW)).then_raises(
        Conflict, "used"
    )
    given(booking_link, [ISSUED]).when(UseBookingLink("s1", TIMES[0], TIMES[-1])).then_raises(
        Conflict, "expired"
    )
    given(booking_link).when(UseBookingLink("s1", TIMES[0], NOW)).then_raises(NotFound)


# -- the service, on the real store ----------------------------------------------------------
@pytest.fixture
def offer(client, therapist, auth_header):
    therapist()
    day = monday()
    times = [at(day, 10), at(day, 11), at(day + timedelta(days=1), 14)]
    made = client.post(
        "/booking-links",
        headers=auth_header("admin"),
        json={
            "client_id": "reserved-sam",
            "enquiry_id": "enq-sam",
            "therapist_id": "t1",
            "modality": "telephone",
            "starts": [t.isoformat() for t in times],
        },
    )
    assert made.status_code == 201, made.json
    return made.json, times


def token_for(client, auth_header, link_id) -> str:
    minted = client.post(f"/booking-links/{link_id}/token", headers=auth_header("service"))
    assert minted.status_code == 201, minted.json
    return minted.json["token"]


def test_the_person_books_an_offered_time_and_the_link_is_spent(
    app, client, offer, auth_header, settings
):
    link, times = offer
    assert "token" not in link and link["status"] == "offered"
    # staff never hold a token
    refused = client.post(f"/booking-links/{link['link_id']}/token", headers=auth_header("admin"))
    assert refused.status_code == 403
    token = token_for(client, auth_header, link["link_id"])
    portal = auth_header("service")

    opened = client.post("/booking-links/open", headers=portal, json={"token": token})
    assert opened.status_code == 200, opened.json
    assert opened.json["therapist_name"] == "Ann Therapist"
    assert [datetime.fromisoformat(t) for t in opened.json["free"]] == times

    wrong = client.post(
        "/booking-links/book",
        headers=portal,
        json={"token": token, "starts_at": (times[0] + timedelta(hours=3)).isoformat()},
    )
    assert wrong.status_code == 422 and wrong.json["errors"][0]["field"] == "starts_at"
    booked = client.post(
        "/booking-links/book",
        headers=portal,
        json={"token": token, "starts_at": times[1].isoformat()},
    )
    assert booked.status_code == 201, booked.json
    session = booked.json
    assert (session["client_id"], session["kind"], session["modality"]) == (
        "reserved-sam",
        "assessment",
        "telephone",
    )
    again = client.post(
        "/booking-links/book",
        headers=portal,
        json={"token": token, "starts_at": times[0].isoformat()},
    )
    assert again.status_code == 404  # spent: the same answer as a guessed token
    guessed = client.post("/booking-links/open", headers=portal, json={"token": "guess"})
    assert guessed.status_code == 404
    seen = client.get(f"/booking-links/{link['link_id']}", headers=auth_header("admin")).json
    assert seen["status"] == "used" and seen["session_id"] == session["session_id"]

    with app.app_context():
        from shared.web import context

        stored = list(context().store.events.find({}, {"_id": 0}))
    assert token not in repr(stored), "a token is a credential: never in an event"
    types = [e["type"] for e in stored if e["stream_id"].startswith(("booking", "session"))]
    assert types == ["BookingLinkIssued", "BookingLinkUsed", "SessionBooked"]


def test_a_time_reception_booked_meanwhile_is_refused_and_the_link_stays_usable(
    client, offer, auth_header, settings
):
    link, times = offer
    token = token_for(client, auth_header, link["link_id"])
    register_client(settings, "emma", "t1")
    from .conftest import apply_records_directly

    apply_records_directly(settings)
    staff = client.post(
        "/sessions",
        headers=auth_header("admin"),
        json={
            "client_id": "emma",
            "therapist_id": "t1",
            "kind": "treatment",
            "modality": "video",
            "starts_at": times[0].isoformat(),
        },
    )
    assert staff.status_code == 201, staff.json
    portal = auth_header("service")
    opened = client.post("/booking-links/open", headers=portal, json={"token": token}).json
    assert [datetime.fromisoformat(t) for t in opened["free"]] == times[1:]
    taken = client.post(
        "/booking-links/book",
        headers=portal,
        json={"token": token, "starts_at": times[0].isoformat()},
    )
    assert taken.status_code == 409 and taken.json["code"] == "slot_taken"
    ok = client.post(
        "/booking-links/book",
        headers=portal,
        json={"token": token, "starts_at": times[2].isoformat()},
    )
    assert ok.status_code == 201, ok.json


def test_two_links_racing_for_one_time_book_it_once(app, client, offer, auth_header):
    link, times = offer
    other = client.post(
        "/booking-links",
        headers=auth_header("admin"),
        json={
            "client_id": "reserved-kim",
            "therapist_id": "t1",
            "modality": "telephone",
            "starts": [times[0].isoformat()],
        },
    ).json
    tokens = [
        token_for(client, auth_header, link["link_id"]),
        token_for(client, auth_header, other["link_id"]),
    ]
    portal = auth_header("service")
    start, answers = threading.Barrier(2), []

    def book(token):
        with app.test_client() as c:
            start.wait()
            answers.append(
                c.post(
                    "/booking-links/book",
                    headers=portal,
                    json={"token": token, "starts_at": times[0].isoformat()},
                ).status_code
            )

    threads = [threading.Thread(target=book, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [201, 409]


def test_an_expired_link_is_gone(client, offer, auth_header, clock):
    link, times = offer
    token = token_for(client, auth_header, link["link_id"])
    clock.offset = timedelta(days=8)
    portal = auth_header("service")
    assert (
        client.post("/booking-links/open", headers=portal, json={"token": token}).status_code == 404
    )
    minted = client.post(f"/booking-links/{link['link_id']}/token", headers=portal)
    assert minted.status_code == 404


def test_a_link_offering_a_taken_or_past_time_is_refused_naming_it(client, offer, auth_header):
    link, times = offer
    made = client.post(
        "/booking-links",
        headers=auth_header("admin"),
        json={
            "client_id": "reserved-sam",  # the same person: their own offered time is free
            "therapist_id": "t1",
            "modality": "telephone",
            "starts": [times[0].isoformat(), "2020-01-06T10:00:00+00:00"],
        },
    )
    assert made.status_code == 422, made.json
    assert made.json["errors"][0]["field"] == "starts.1"
