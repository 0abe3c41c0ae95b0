"""A client's own link to one session (issue 17, item 2): the rules given/when/then (pure),
and the service on the real store: reception sends a link, the client moves the session to
another free time of the same therapist, or cancels it (late inside the 24-hour notice, as
a staff cancellation records it), once; a time taken meanwhile is refused with the claims of
a staff booking; a used, expired or guessed link is one 404; bad input is a clear 4xx with
nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scheduling.domain.session import BOOKED, SessionState
from services.scheduling.domain.session_link import (
    CANCEL,
    RESCHEDULE,
    IssueSessionLink,
    UseSessionLink,
    session_link,
)
from shared.domain import Conflict, NotFound
from shared.events import NewEvent
from testkit.given import given

from .conftest import apply_records_directly, at, monday, register_client

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
STARTS = NOW + timedelta(days=3)
SESSION = SessionState(
    BOOKED,
    {"session_id": "s1", "client_id": "c1", "therapist_id": "t1", "starts_at": STARTS},
)
ISSUED = NewEvent(
    "SessionLinkIssued",
    {
        "link_id": "l1",
        "session_id": "s1",
        "client_id": "c1",
        "therapist_id": "t1",
        "starts_at": STARTS,
        "expires_at": STARTS,
    },
)


def used(action, starts_at=None, at=NOW):
    return NewEvent(
        "SessionLinkUsed",
        {
            "link_id": "l1",
            "session_id": "s1",
            "client_id": "c1",
            "action": action,
            "starts_at": starts_at,
            "used_at": at,
        },
    )


# -- the rules ---------------------------------------------------------------------------------
def test_a_link_is_for_one_booked_session_and_expires_at_its_start_at_the_latest():
    given(session_link).when(IssueSessionLink("l1", SESSION, NOW)).then([ISSUED])
    cancelled = SessionState("cancelled", SESSION.facts)
    given(session_link).when(IssueSessionLink("l1", cancelled, NOW)).then_raises(
        Conflict, "cancelled"
    )
    given(session_link).when(IssueSessionLink("l1", SESSION, STARTS)).then_raises(
        Conflict, "started"
    )


def test_the_link_changes_the_session_once():
    later = STARTS + timedelta(days=1)
    given(session_link, [ISSUED]).when(UseSessionLink(RESCHEDULE, SESSION, NOW, later)).then(
        [used(RESCHEDULE, later)]
    )
    given(session_link, [ISSUED]).when(UseSessionLink(CANCEL, SESSION, NOW)).then([used(CANCEL)])
    given(session_link, [ISSUED, used(CANCEL)]).when(
        UseSessionLink(CANCEL, SESSION, NOW)
    ).then_raises(Conflict, "used")
    given(session_link).when(UseSessionLink(CANCEL, SESSION, NOW)).then_raises(NotFound)


def test_inside_the_notice_period_it_cancels_but_does_not_move():
    soon = STARTS - timedelta(hours=23)
    given(session_link, [ISSUED]).when(UseSessionLink(CANCEL, SESSION, soon)).then(
        [used(CANCEL, at=soon)]
    )
    err = (
        given(session_link, [ISSUED])
        .when(UseSessionLink(RESCHEDULE, SESSION, soon, STARTS + timedelta(days=1)))
        .then_raises(Conflict, "24 hours")
    )
    assert err.code == "inside_notice"


def test_a_session_moved_or_cancelled_since_the_link_was_sent_is_not_changed_by_it():
    moved = SessionState(BOOKED, {**SESSION.facts, "starts_at": STARTS + timedelta(hours=2)})
    given(session_link, [ISSUED]).when(UseSessionLink(CANCEL, moved, NOW)).then_raises(
        Conflict, "expired"
    )
    given(session_link, [ISSUED]).when(UseSessionLink(CANCEL, SESSION, STARTS)).then_raises(
        Conflict, "expired"
    )


# -- the service, on the real store ----------------------------------------------------------
@pytest.fixture
def booked(client, therapist, auth_header, settings):
    """Emma's video session three weeks ahead, Monday 10:00, and a link to it sent."""
    therapist()
    register_client(settings, "emma", "t1")
    apply_records_directly(settings)
    made = client.post(
        "/sessions",
        headers=auth_header("admin"),
        json={
            "client_id": "emma",
            "therapist_id": "t1",
            "kind": "treatment",
            "modality": "video",
            "starts_at": at(monday(), 10).isoformat(),
        },
    )
    assert made.status_code == 201, made.json
    session = made.json
    link = client.post(
        f"/sessions/{session['session_id']}/client-link", headers=auth_header("admin")
    )
    assert link.status_code == 201, link.json
    assert "token" not in link.json
    assert link.json["expires_at"] <= session["starts_at"]
    minted = client.post(
        f"/session-links/{link.json['link_id']}/token", headers=auth_header("service")
    )
    assert minted.status_code == 201, minted.json
    return session, link.json, minted.json["token"]


def events(app, prefix=("session",)):
    with app.app_context():
        from shared.web import context

        docs = context().store.events.find({}, {"_id": 0}).sort("position", 1)
        return [e for e in docs if e["stream_id"].startswith(prefix)]


def test_the_client_moves_the_session_to_a_free_time_once(app, client, booked, auth_header):
    session, link, token = booked
    portal = auth_header("service")
    staff_token = client.post(
        f"/session-links/{link['link_id']}/token", headers=auth_header("admin")
    )
    assert staff_token.status_code == 403  # staff never hold the client's credential

    offer = client.post("/session-links/open", headers=portal, json={"token": token})
    assert offer.status_code == 200, offer.json
    offer = offer.json
    assert offer["therapist_name"] == "Ann Therapist" and offer["modality"] == "video"
    assert offer["can_move"] is True and offer["late"] is False
    free = [datetime.fromisoformat(t) for t in offer["free"]]
    original = datetime.fromisoformat(session["starts_at"])
    assert original not in free and free and all(t.minute == 0 for t in free)

    new_time = original + timedelta(days=1, hours=2)  # Tuesday 12:00
    assert new_time in free
    moved = client.post(
        "/session-links/reschedule",
        headers=portal,
        json={"token": token, "starts_at": new_time.isoformat()},
    )
    assert moved.status_code == 200, moved.json
    assert datetime.fromisoformat(moved.json["starts_at"]) == new_time
    assert moved.json["video_link"] is None  # the client's link goes to their channels only
    shown = client.get(f"/sessions/{session['session_id']}", headers=auth_header("admin")).json
    assert datetime.fromisoformat(shown["starts_at"]) == new_time and shown["status"] == "booked"

    again = client.post("/session-links/cancel", headers=portal, json={"token": token})
    assert again.status_code == 404  # used: the same answer as a guessed token
    assert (
        client.post("/session-links/open", headers=portal, json={"token": token}).status_code == 404
    )

    stored = events(app, ("session",))
    assert token not in repr(stored), "a token is a credential: never in an event"
    assert [e["type"] for e in stored] == [
        "SessionBooked",
        "SessionLinkIssued",
        "SessionLinkUsed",
        "SessionRescheduled",
    ]
    # the claims moved: the old time is free for someone else, the new one is not
    register_client(app.config["RAPPORT_SETTINGS"], "kim", "t1", given="Kim")
    apply_records_directly(app.config["RAPPORT_SETTINGS"])
    for starts, expected in ((original, 201), (new_time, 409)):
        other = client.post(
            "/sessions",
            headers=auth_header("admin"),
            json={
                "client_id": "kim",
                "therapist_id": "t1",
                "kind": "treatment",
                "modality": "telephone",
                "starts_at": starts.isoformat(),
            },
        )
        assert other.status_code == expected, other.json


def test_a_cancellation_inside_the_notice_period_is_the_clients_late_one(
    client, booked, auth_header, clock
):
    session, _link, token = booked
    starts = datetime.fromisoformat(session["starts_at"])
    clock.offset = starts - datetime.now(UTC) - timedelta(hours=20)
    portal = auth_header("service")
    offer = client.post("/session-links/open", headers=portal, json={"token": token}).json
    assert offer["late"] is True and offer["can_move"] is False and offer["free"] == []
    refused = client.post(
        "/session-links/reschedule",
        headers=portal,
        json={"token": token, "starts_at": (starts + timedelta(days=2)).isoformat()},
    )
    assert refused.status_code == 409 and refused.json["code"] == "inside_notice"
    cancelled = client.post("/session-links/cancel", headers=portal, json={"token": token})
    assert cancelled.status_code == 200, cancelled.json
    shown = client.get(f"/sessions/{session['session_id']}", headers=auth_header("admin")).json
    assert (shown["status"], shown["cancelled_by"], shown["late"]) == ("cancelled", "client", True)


def test_a_cancellation_with_notice_is_not_late(client, booked, auth_header):
    session, _link, token = booked
    cancelled = client.post(
        "/session-links/cancel", headers=auth_header("service"), json={"token": token}
    )
    assert cancelled.status_code == 200, cancelled.json
    shown = client.get(f"/sessions/{session['session_id']}", headers=auth_header("admin")).json
    assert (shown["status"], shown["cancelled_by"], shown["late"]) == ("cancelled", "client", False)


def test_a_link_past_the_sessions_start_is_gone(client, booked, auth_header, clock):
    session, link, token = booked
    clock.move_past(datetime.fromisoformat(session["starts_at"]))
    portal = auth_header("service")
    assert (
        client.post("/session-links/open", headers=portal, json={"token": token}).status_code == 404
    )
    assert (
        client.post("/session-links/cancel", headers=portal, json={"token": token}).status_code
        == 404
    )
    minted = client.post(f"/session-links/{link['link_id']}/token", headers=portal)
    assert minted.status_code == 404


def test_a_time_taken_meanwhile_is_refused_and_the_link_stays_usable(
    client, booked, auth_header, settings
):
    session, _link, token = booked
    portal = auth_header("service")
    original = datetime.fromisoformat(session["starts_at"])
    wanted = original + timedelta(days=1)
    free = client.post("/session-links/open", headers=portal, json={"token": token}).json["free"]
    assert wanted.isoformat() in [datetime.fromisoformat(t).isoformat() for t in free]
    register_client(settings, "kim", "t1", given="Kim")
    apply_records_directly(settings)
    staff = client.post(
        "/sessions",
        headers=auth_header("admin"),
        json={
            "client_id": "kim",
            "therapist_id": "t1",
            "kind": "treatment",
            "modality": "video",
            "starts_at": wanted.isoformat(),
        },
    )
    assert staff.status_code == 201, staff.json
    taken = client.post(
        "/session-links/reschedule",
        headers=portal,
        json={"token": token, "starts_at": wanted.isoformat()},
    )
    assert taken.status_code == 409 and taken.json["code"] == "slot_taken", taken.json
    shown = client.get(f"/sessions/{session['session_id']}", headers=auth_header("admin")).json
    assert datetime.fromisoformat(shown["starts_at"]) == original  # nothing changed
    ok = client.post(
        "/session-links/reschedule",
        headers=portal,
        json={"token": token, "starts_at": (wanted + timedelta(hours=1)).isoformat()},
    )
    assert ok.status_code == 200, ok.json


BAD_BODIES = [
    {},
    {"token": ""},
    {"token": None},
    {"token": 12},
    {"token": "x" * 5000},
    {"token": ["a"]},
    {"token": "guess", "starts_at": "2026-13-40T99:00"},
    {"starts_at": "2030-01-01T10:00:00+00:00"},
]


@pytest.mark.parametrize("route", ["open", "cancel", "reschedule"])
def test_bad_input_is_a_clear_refusal_and_nothing_is_stored(
    app, client, booked, auth_header, route
):
    session, _link, token = booked
    portal = auth_header("service")
    before = len(events(app, ("session",)))
    bodies = BAD_BODIES + [
        {"token": token, "starts_at": "not a time"},
        {"token": token, "starts_at": "2026-03-02T10:00:00"},  # no zone
        {"token": token, "starts_at": "1999-01-01T10:00:00+00:00"},
        {"token": token, "starts_at": session["starts_at"]},  # where it is already
        {"token": token, "starts_at": "2099-01-05T03:00:00+00:00"},  # never offered
    ]
    for body in bodies:
        answer = client.post(f"/session-links/{route}", headers=portal, json=body)
        assert answer.status_code in (400, 404, 422), (body, answer.status_code, answer.json)
        if answer.status_code == 422:
            assert answer.json["errors"][0]["field"] in ("token", "starts_at"), answer.json
    assert (
        client.post(
            f"/session-links/{route}", headers=portal, data="{", content_type="application/json"
        ).status_code
        == 400
    )
    assert len(events(app, ("session",))) == before


def test_only_staff_who_may_change_the_session_send_a_link(client, booked, auth_header):
    session, _link, _token = booked
    other = auth_header("therapist", therapist_id="t2")
    answer = client.post(f"/sessions/{session['session_id']}/client-link", headers=other)
    assert answer.status_code == 403
    assert (
        client.post("/sessions/nope/client-link", headers=auth_header("admin")).status_code == 404
    )
    portal_only = client.post(
        "/session-links/open", headers=auth_header("admin"), json={"token": "x"}
    )
    assert portal_only.status_code == 403
