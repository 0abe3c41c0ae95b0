"""Issue 17, item 2, as notifications carries it (real broker and store; scheduling's own app
over HTTP for the tokens):
- a time booked by link before the person is registered is confirmed to the contact their
  enquiry gave, with the time and how it will happen, and registering them afterwards does
  not confirm it twice;
- a booking link or a link booking that reaches the planner before the enquiry it refers to
  (another topic ran ahead of records') is sent once the enquiry arrives;
- the client's own link to one session reaches their channels with a token minted at send
  time that opens the session at scheduling, and is never stored here."""

from __future__ import annotations

import re
from datetime import timedelta

from services.notifications.projections import Planner
from services.scheduling.domain import diary
from services.scheduling.tests.conftest import apply_records_directly
from shared.auth import service_token
from shared.consumer import rebuild
from shared.events import registry, utcnow
from shared.mongo import client as mongo_client
from shared.projections import ProjectionStore
from testkit.plugin import service_workers

from .conftest import wait
from .test_booking_link import (  # noqa: F401  (fixtures)
    WEEK,
    enquiry,
    linked_settings,
    scheduling,
)


def held(settings, client_id: str, kind: str) -> bool:
    """Whether the planner holds a link or a booking for this person, awaiting the enquiry."""
    planner = ProjectionStore(
        mongo_client(settings.mongo_uri_of("notifications")),
        settings.database("notifications"),
        Planner(),
        registry,
    )
    found = planner.reader("enquirers").find_one({"_id": client_id}) or {}
    return bool(found.get(kind))


def test_a_link_booking_before_registration_is_confirmed_to_the_enquiry_contact_once(
    nsettings, feed, mail, book, workers
):
    workers.start(*feed.relays(), *service_workers(nsettings, "notifications"))
    feed.therapist()
    starts = diary.to_utc(
        diary.local(utcnow()).date() + timedelta(days=4), diary.parse_hhmm("11:00")
    )
    # the booking reaches the planner before the enquiry it depends on
    feed.booked(
        "s-sam", "sam", starts=starts, kind="assessment", modality="telephone", video_link=None
    )
    wait(lambda: held(nsettings, "sam", "bookings"), message="the booking held for the enquiry")
    enquiry(feed, "sam", email="sam@person.test", phone=None, contact_by="email")

    wait(lambda: mail.to("sam@person.test"), message="the confirmation by e-mail")
    sent = mail.to("sam@person.test")[0]
    body = sent.get_content()
    assert "first appointment" in sent["Subject"]
    when = diary.local(starts).strftime("%A %-d %B %Y at %H:%M")
    assert when in body and "By telephone: we will call you" in body, body

    # registered afterwards (the reminder gets planned): no second confirmation
    feed.client("sam", channels=("email",), email="sam@person.test")
    wait(
        lambda: book.find_one({"session_id": "s-sam", "kind": "reminder"}),
        message="the registration applied",
    )
    kinds = sorted(m["kind"] for m in book.find({"session_id": "s-sam"}))
    assert kinds == ["booked_by_link", "reminder"], kinds
    # a rebuild of the planner replays the facts in whatever order the topics give; the
    # book it shares with the live generation keeps one confirmation, and nothing changes
    before = {m["_id"]: m["status"] for m in book.find({"session_id": "s-sam"})}
    rebuild(nsettings, Planner())
    assert {m["_id"]: m["status"] for m in book.find({"session_id": "s-sam"})} == before


def test_a_booking_link_issued_before_the_enquiry_arrives_is_sent_when_it_does(
    linked_settings,  # noqa: F811
    scheduling,  # noqa: F811
    feed,
    mail,
    workers,
    auth_header,
):
    app, _ = scheduling
    api = app.test_client()
    therapist = {
        "therapist_id": "t1",
        "name": "Ann Therapist",
        "email": "ann@practice.test",
        "modalities": ["telephone"],
        "rooms": [],
    }
    assert api.post("/therapists", headers=auth_header("admin"), json=therapist).status_code == 201
    hours = {"weekly_hours": WEEK, "exceptions": []}
    assert (
        api.put("/therapists/t1/availability", headers=auth_header("admin"), json=hours)
    ).status_code == 200
    workers.start(*feed.relays(), *service_workers(linked_settings, "notifications"))
    day = diary.local(utcnow()).date() + timedelta(days=3)
    made = api.post(
        "/booking-links",
        headers=auth_header("admin"),
        json={
            "client_id": "lee",
            "therapist_id": "t1",
            "modality": "telephone",
            "starts": [diary.to_utc(day, diary.parse_hhmm("10:00")).isoformat()],
        },
    )
    assert made.status_code == 201, made.json
    wait(lambda: held(linked_settings, "lee", "links"), message="the link held for the enquiry")
    assert mail.to("lee@person.test") == []
    enquiry(feed, "lee", email="lee@person.test", phone=None, contact_by="email")
    wait(lambda: mail.to("lee@person.test"), message="the link once the enquiry arrived")
    assert "/book-online/" in mail.to("lee@person.test")[0].get_content()
    assert not held(linked_settings, "lee", "links")


def test_the_clients_own_session_link_reaches_them_and_opens_the_session(
    linked_settings,  # noqa: F811
    scheduling,  # noqa: F811
    feed,
    mail,
    book,
    workers,
    auth_header,
    settings,
):
    app, _ = scheduling
    api = app.test_client()
    therapist = {
        "therapist_id": "t1",
        "name": "Ann Therapist",
        "email": "ann@practice.test",
        "modalities": ["telephone", "video"],
        "rooms": [],
    }
    assert api.post("/therapists", headers=auth_header("admin"), json=therapist).status_code == 201
    hours = {"weekly_hours": WEEK, "exceptions": []}
    assert (
        api.put("/therapists/t1/availability", headers=auth_header("admin"), json=hours)
    ).status_code == 200
    feed.client("emma", channels=("email",), email="emma@client.test")
    apply_records_directly(settings)
    workers.start(*feed.relays(), *service_workers(linked_settings, "notifications"))
    day = diary.local(utcnow()).date() + timedelta(days=5)
    session = api.post(
        "/sessions",
        headers=auth_header("admin"),
        json={
            "client_id": "emma",
            "therapist_id": "t1",
            "kind": "treatment",
            "modality": "telephone",
            "starts_at": diary.to_utc(day, diary.parse_hhmm("14:00")).isoformat(),
        },
    )
    assert session.status_code == 201, session.json
    sid = session.json["session_id"]
    link = api.post(f"/sessions/{sid}/client-link", headers=auth_header("admin"))
    assert link.status_code == 201, link.json

    def the_link():
        for message in mail.to("emma@client.test"):
            found = re.search(
                r"https://portal\.practice\.test/my-session/(\S+)", message.get_content()
            )
            if found:
                return message, found.group(1)
        return None

    message, token = wait(the_link, message="the client's own link by e-mail")
    assert message["Subject"].startswith("Change or cancel your appointment")
    portal = {"Authorization": f"Bearer {service_token(linked_settings.token_secret, 'portal')}"}
    opened = api.post("/session-links/open", headers=portal, json={"token": token})
    assert opened.status_code == 200 and opened.json["session_id"] == sid, opened.json
    stored = repr(list(book.find())) + repr(list(book.database["events"].find()))
    assert token not in stored
