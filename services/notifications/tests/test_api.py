"""Service tier: the HTTP API — preferences and how pending messages follow them, input
errors as problem+json, roles, the committed OpenAPI document, metrics."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.notifications.app import create_app
from services.notifications.projections import Planner
from shared.consumer import ProjectionRunner
from shared.events import registry
from shared.eventstore import EventStore
from shared.mongo import client as mongo_client

from .conftest import wait

OPENAPI = Path(__file__).resolve().parents[1] / "openapi.json"


@pytest.fixture
def practice(nsettings, feed, workers, api, auth_header):
    """Two clients of therapist t1 (c1: email and SMS, c2: email only), c1 booked in 3 days."""
    feed.therapist()
    feed.client("c1")
    feed.client("c2", channels=("email",))
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    feed.booked(starts=starts)
    workers.start(*feed.relays(), ProjectionRunner(nsettings, Planner()).run)
    wait(
        lambda: api.get("/clients/c2/preferences", headers=auth_header("admin")).status_code == 200
    )
    wait(lambda: len(api.get("/scheduled?kind=reminder", headers=auth_header("admin")).json) == 2)
    return starts


def test_preferences_start_from_consent_and_pending_reminders_follow_a_change(
    practice, api, auth_header, nsettings, book
):
    lead = auth_header("clinical_lead")
    default = api.get("/clients/c1/preferences", headers=lead).json
    assert default["default"] is True and default["channels"] == ["email", "sms"]
    assert default["reminder_lead_hours"] == 24

    body = {"channels": ["email"], "reminder_lead_hours": 2, "quiet_hours": None}
    r = api.put(
        "/clients/c1/preferences", json=body, headers=auth_header("therapist", therapist_id="t1")
    )
    assert r.status_code == 200, r.json
    assert r.json == {
        "client_id": "c1",
        "channels": ["email"],
        "reminder_lead_hours": 2.0,
        "quiet_hours": None,
        "consented_channels": ["email", "sms"],
        "default": False,
    }
    reminders = api.get("/scheduled?kind=reminder", headers=lead).json
    assert [(n["channel"], n["due_at"]) for n in reminders] == [
        ("email", (practice - timedelta(hours=2)).isoformat())
    ]
    sms = book.find_one({"kind": "reminder", "channel": "sms"})
    assert sms["status"] == "voided" and sms["void_reason"] == "the client chose other channels"

    assert api.put("/clients/c1/preferences", json=body, headers=lead).status_code == 200
    store = EventStore(
        mongo_client(nsettings.mongo_uri_of("notifications")),
        nsettings.database("notifications"),
        registry,
    )
    assert [e.type for e in store.load("preferences-c1")] == ["NotificationPreferencesSet"]

    # quiet hours omitted: the practice default applies
    r = api.put(
        "/clients/c1/preferences",
        json={"channels": ["email", "sms"], "reminder_lead_hours": 24},
        headers=auth_header("admin"),
    )
    assert r.status_code == 200 and r.json["channels"] == ["email", "sms"]
    assert (
        len(api.get("/scheduled?kind=reminder", headers=lead).json) == 2
    )  # the SMS reminder is back


BAD_PREFERENCES = [
    ({"channels": ["sms"], "reminder_lead_hours": 24}, "channels"),  # c2 never agreed to SMS
    ({"channels": ["pigeon"], "reminder_lead_hours": 24}, "channels.0"),
    ({"channels": ["email"], "reminder_lead_hours": 0}, "reminder_lead_hours"),
    (
        {
            "channels": ["email"],
            "reminder_lead_hours": 24,
            "quiet_hours": {"start": "25:00", "end": "08:00"},
        },
        "quiet_hours.start",
    ),
    ({"channels": ["email"]}, "reminder_lead_hours"),
    ({"channels": ["email"], "reminder_lead_hours": 24, "colour": "blue"}, "colour"),
]


def test_bad_preferences_are_422_naming_the_field_and_write_nothing(
    practice, api, auth_header, book
):
    before = list(book.database["preferences"].find())
    for body, field in BAD_PREFERENCES:
        r = api.put("/clients/c2/preferences", json=body, headers=auth_header("admin"))
        assert r.status_code == 422 and r.mimetype == "application/problem+json", (body, r.json)
        assert field in {e["field"] for e in r.json["errors"]}, (body, r.json)
    assert list(book.database["preferences"].find()) == before


def test_preferences_errors_malformed_unknown_forbidden_unauthenticated(
    practice, api, auth_header, book
):
    before = list(book.find().sort("_id", 1))
    r = api.put(
        "/clients/c1/preferences",
        data="{nope",
        content_type="application/json",
        headers=auth_header("admin"),
    )
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    ok = {"channels": ["email"], "reminder_lead_hours": 3}
    assert (
        api.put("/clients/zz/preferences", json=ok, headers=auth_header("admin")).status_code == 404
    )
    other = api.put(
        "/clients/c1/preferences", json=ok, headers=auth_header("therapist", therapist_id="t2")
    )
    assert other.status_code == 403
    assert api.put("/clients/c1/preferences", json=ok).status_code == 401
    assert list(book.find().sort("_id", 1)) == before  # nothing was written


def test_roles_on_the_log_and_the_schedule(practice, api, auth_header):
    assert (
        api.get("/notifications", headers=auth_header("therapist", therapist_id="t1")).status_code
        == 403
    )
    assert api.get("/notifications?status=lost", headers=auth_header("admin")).status_code == 422
    assert api.get("/notifications?limit=9999", headers=auth_header("admin")).status_code == 422
    log = api.get("/notifications?kind=confirmation", headers=auth_header("admin")).json
    assert {(n["channel"], n["client_id"]) for n in log} == {("email", "c1"), ("sms", "c1")}
    # two confirmations (no dispatcher runs here) and two reminders, all of t1's client
    assert len(api.get("/scheduled", headers=auth_header("therapist", therapist_id="t1")).json) == 4
    assert api.get("/scheduled", headers=auth_header("therapist", therapist_id="t2")).json == []
    assert api.post("/inbox/nothing/read", headers=auth_header("clinical_lead")).status_code == 404


def test_every_route_has_roles(nsettings):
    app = create_app(nsettings)
    ours = [
        r for r in app.url_map.iter_rules() if r.endpoint.split(".")[0].startswith("notifications")
    ]
    assert len(ours) == 7  # preferences: GET and PUT; the subject access part
    for rule in ours:
        assert getattr(app.view_functions[rule.endpoint], "_rapport_roles", None), rule.rule


def test_the_committed_openapi_document_is_the_live_one(api):
    live = api.get("/openapi.json").json
    assert json.loads(OPENAPI.read_text()) == live, "regenerate: make openapi"
    paths = live["paths"]
    assert {
        "/notifications",
        "/scheduled",
        "/inbox",
        "/inbox/{item_id}/read",
        "/clients/{client_id}/preferences",
    } <= set(paths)
    put = paths["/clients/{client_id}/preferences"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PreferencesIn"
    )


def test_metrics_show_the_message_book(practice, api):
    text = api.get("/metrics").get_data(as_text=True)
    assert 'rapport_notifications{status="pending"}' in text
    assert "rapport_notifications_overdue_seconds" in text


def test_quiet_hours_hold_a_client_message_until_they_end(practice, api, auth_header, feed):
    london = ZoneInfo("Europe/London")
    now = datetime.now(london)
    start, end = (
        (now - timedelta(hours=1)).strftime("%H:%M"),
        (now + timedelta(hours=1)).strftime("%H:%M"),
    )
    body = {
        "channels": ["email"],
        "reminder_lead_hours": 24,
        "quiet_hours": {"start": start, "end": end},
    }
    assert (
        api.put("/clients/c1/preferences", json=body, headers=auth_header("admin")).status_code
        == 200
    )
    feed.booked(sid="s9", starts=datetime.now(UTC) + timedelta(days=4))
    held = wait(
        lambda: [
            n
            for n in api.get("/scheduled?kind=confirmation", headers=auth_header("admin")).json
            if n["id"] == "confirmation:s9:email"
        ]
    )
    due = datetime.fromisoformat(held[0]["due_at"]).astimezone(london)
    assert due.strftime("%H:%M") == end and due > now


def test_disposal_forgets_the_client_but_keeps_the_bare_delivery_log(nsettings, book):
    from services.notifications import SERVICE

    db = book.database
    book.insert_one(
        {
            "_id": "risk:a1:lead:email",
            "client_id": "c1",
            "kind": "risk_alert",
            "status": "sent",
            "context": {"instrument": "PHQ-9", "item": 9, "answer": 2},
            "last_error": None,
        }
    )
    db["inbox"].insert_one(
        {"_id": "risk:a1:lead:inbox", "client_id": "c1", "body": "PHQ-9 item 9 answered 2"}
    )
    db["preferences"].insert_one({"_id": "c1", "channels": ["email"]})
    SERVICE.dispose(nsettings, "c1")
    assert book.find_one({"_id": "risk:a1:lead:email"})["context"] == {}
    assert db["inbox"].count_documents({}) == 0 and db["preferences"].count_documents({}) == 0


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_a_time_outside_the_range_is_a_422_naming_it(api, auth_header, name, value):
    """Issue 15 (#8): year 9999 with an offset gave a 500 here."""
    r = api.get("/notifications", query_string={name: value}, headers=auth_header("clinical_lead"))
    assert r.status_code == 422, r.get_data(as_text=True)
    assert {e["field"] for e in r.json["errors"]} == {f"query.{name}"}
    assert "between 2000-01-01 and 2099-12-31" in r.json["errors"][0]["reason"]
