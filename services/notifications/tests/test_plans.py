"""Domain tier: what is planned for each fact, and the wording clients receive. Pure."""

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from services.notifications.domain import QuietHours, plans
from services.notifications.workers.render import Renderer

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, noon
CLIENT = {
    "_id": "c1",
    "status": "active",
    "reminder_channels": ["email", "sms"],
    "therapist_id": "t1",
}
SESSION = {
    "session_id": "s1",
    "client_id": "c1",
    "therapist_id": "t1",
    "status": "booked",
    "starts_at": NOW + timedelta(days=3),
    "ends_at": NOW + timedelta(days=3, minutes=50),
    "modality": "video",
    "video_link": "https://meet.example/abc",
    "room": None,
    "kind": "treatment",
}
QUIET = QuietHours.parse("21:00", "08:00")


def contact(**prefs):
    if not prefs:
        return plans.contact_for(CLIENT, None, None)
    base = {
        "channels": ["email", "sms"],
        "reminder_lead_minutes": 24 * 60,
        "quiet_start": None,
        "quiet_end": None,
    }
    return plans.contact_for(CLIENT, {**base, **prefs}, None)


def test_a_booked_session_gets_one_reminder_per_consented_channel_24h_before():
    # given a session in three days and a client who agreed to email and SMS
    planned = plans.reminders(SESSION, contact(), LONDON, NOW)
    # then one reminder per channel, keyed by session and start, due a day before
    assert [m["_id"] for m in planned] == [
        "reminder:s1:20260305T1200Z:email",
        "reminder:s1:20260305T1200Z:sms",
    ]
    assert {m["due_at"] for m in planned} == {SESSION["starts_at"] - timedelta(hours=24)}


def test_preferences_narrow_channels_and_move_the_reminder():
    planned = plans.reminders(
        SESSION, contact(channels=["sms"], reminder_lead_minutes=120), LONDON, NOW
    )
    assert [(m["channel"], m["due_at"]) for m in planned] == [
        ("sms", SESSION["starts_at"] - timedelta(hours=2))
    ]


def test_a_channel_never_consented_to_is_not_used_even_if_preferred():
    client = {**CLIENT, "reminder_channels": ["email"]}
    chosen = plans.contact_for(
        client, {"channels": ["sms", "email"], "reminder_lead_minutes": 60}, None
    )
    assert chosen.channels == ("email",)


def test_a_discharged_or_unknown_client_gets_nothing():
    assert plans.contact_for({**CLIENT, "status": "discharged"}, None, QUIET).channels == ()
    assert plans.contact_for(None, None, QUIET).channels == ()


def test_no_reminder_for_a_session_under_an_hour_away_or_not_booked():
    soon = {**SESSION, "starts_at": NOW + timedelta(minutes=40)}
    assert plans.reminders(soon, contact(), LONDON, NOW) == []
    assert plans.reminders({**SESSION, "status": "cancelled"}, contact(), LONDON, NOW) == []


def test_a_late_booking_is_reminded_at_once():
    tomorrow = {**SESSION, "starts_at": NOW + timedelta(hours=5)}
    assert {m["due_at"] for m in plans.reminders(tomorrow, contact(), LONDON, NOW)} == {NOW}


def test_the_same_facts_plan_the_same_keys():
    assert plans.reminders(SESSION, contact(), LONDON, NOW) == plans.reminders(
        SESSION, contact(), LONDON, NOW
    )


def test_a_risk_alert_goes_at_once_to_therapist_and_lead_by_email_and_inbox():
    alert = {
        "alert_id": "a1",
        "client_id": "c1",
        "therapist_id": "t1",
        "response_id": "r1",
        "instrument": "PHQ-9",
        "item": 9,
        "answer": 2,
        "indicated_at": NOW,
    }
    planned = plans.risk_alert(alert, NOW)
    assert {(m["recipient"], m["channel"]) for m in planned} == {
        ("t1", "email"),
        ("t1", "inbox"),
        ("clinical_lead", "email"),
        ("clinical_lead", "inbox"),
    }
    assert all(m["due_at"] == NOW and m["priority"] == plans.URGENT for m in planned)


def test_a_questionnaire_link_is_planned_for_its_due_time_and_not_after_expiry():
    request = {
        "request_id": "q1",
        "client_id": "c1",
        "therapist_id": "t1",
        "session_id": "s1",
        "due_at": NOW + timedelta(days=1),
        "session_starts_at": SESSION["starts_at"],
        "expires_at": SESSION["starts_at"],
    }
    planned = plans.questionnaire_link(request, contact(), LONDON, NOW)
    assert [m["_id"] for m in planned] == ["questionnaire:q1:email", "questionnaire:q1:sms"]
    assert planned[0]["due_at"] == NOW + timedelta(days=1) and "url" not in planned[0]["context"]
    expired = {**request, "expires_at": NOW - timedelta(minutes=1)}
    assert plans.questionnaire_link(expired, contact(), LONDON, NOW) == []


def test_a_course_is_one_summary_per_channel():
    course = {
        "course_id": "k1",
        "client_id": "c1",
        "therapist_id": "t1",
        "session_ids": [f"s{i}" for i in range(16)],
        "count": 16,
        "interval_weeks": 1,
        "first_starts_at": SESSION["starts_at"],
        "unbooked": [],
    }
    planned = plans.course_summary(course, contact(), LONDON, NOW)
    assert [m["_id"] for m in planned] == ["course:k1:email", "course:k1:sms"]


def test_a_confirmation_asked_for_at_night_waits_for_the_morning():
    night = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)
    quiet = plans.Contact(("email",), timedelta(hours=24), QUIET)
    [planned] = plans.notice("confirmation", "confirmation:s1", SESSION, quiet, LONDON, night)
    assert planned["due_at"] == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)


# -- wording -------------------------------------------------------------------------------------
CLINICAL = re.compile(
    r"therap|depress|anxi|questionnaire|phq|gad|core-10|risk|diagnos|ipt|"
    r"mental|psych|counsel|suicid|score",
    re.IGNORECASE,
)
CONTEXTS = {
    "confirmation": {"starts_at": NOW, "modality": "face_to_face", "room": "Room 2"},
    "rescheduled": {"starts_at": NOW, "modality": "telephone"},
    "cancelled": {"starts_at": NOW, "modality": "video"},
    "reminder": {"starts_at": NOW, "modality": "video", "video_link": "https://meet.example/abc"},
    "questionnaire_link": {
        "session_starts_at": NOW,
        "url": "https://forms.example/q/tok",
        "expires_at": NOW,
    },
    "task_reminder": {"due_at": NOW},
    "course_summary": {"first_starts_at": NOW, "count": 16, "interval_weeks": 1, "dates": [NOW]},
    "booster_invitation": {"count": 2, "interval_months": 2, "dates": [NOW]},
    "care_ended": {"sessions_cancelled": True},
}


@pytest.mark.parametrize("kind", sorted(CONTEXTS))
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_client_messages_say_nothing_clinical(kind, channel):
    rendered = Renderer("Maidstone Wellbeing", LONDON).render(kind, channel, CONTEXTS[kind])
    text = f"{rendered.subject}\n{rendered.body}"
    assert not CLINICAL.search(text), text
    assert "Maidstone Wellbeing" in text


def test_times_are_shown_in_london_time_and_the_video_link_and_form_link_are_included():
    summer = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    r = Renderer("P", LONDON)
    reminder = r.render("reminder", "email", {**CONTEXTS["reminder"], "starts_at": summer})
    assert (
        "Wednesday 1 July 2026 at 10:00" in reminder.body
        and "https://meet.example/abc" in reminder.body
    )
    link = r.render("questionnaire_link", "sms", CONTEXTS["questionnaire_link"])
    assert "https://forms.example/q/tok" in link.body


def test_errors_kept_in_the_log_carry_no_address_or_phone_number():
    from services.notifications.workers.dispatcher import redact

    error = "smtp 550: 5.1.1 <emma.example@mail.test>: rejected; sms to +44 7700 900123 failed"
    assert redact(error) == "smtp 550: 5.1.1 <[address]>: rejected; sms to [address] failed"
    assert redact("smtp: ConnectionRefusedError: [Errno 111] Connection refused").endswith(
        "refused"
    )


@pytest.mark.parametrize(
    "due_at",
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),
        datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_a_task_stored_with_a_date_at_the_edge_of_the_calendar_plans_nothing_and_parks_nothing(
    due_at,
):
    """Issue 15: such a task (accepted before every API kept dates in 2000-2099) made the
    planner write a time BSON cannot hold; the event was parked. Now it plans no reminder,
    and whatever is planned can be stored."""
    import bson

    planned = plans.task_reminder(
        {"task_id": "t1", "client_id": "c1", "due_at": due_at},
        "t1",
        contact(quiet_start="21:00", quiet_end="08:00"),
        LONDON,
        NOW,
    )
    bson.encode({"planned": planned})
    assert planned == []


def test_a_course_recorded_after_it_ended_is_not_announced():
    # issue 13, defect 11: the demo seed records past courses; their summary went out months late
    course = {
        "course_id": "k1",
        "client_id": "c1",
        "therapist_id": "t1",
        "session_ids": ["s1", "s2"],
        "count": 16,
        "interval_weeks": 1,
        "first_starts_at": NOW - timedelta(weeks=16),
        "unbooked": [],
    }
    assert plans.course_summary(course, contact(), LONDON, NOW) == []
    ongoing = {**course, "first_starts_at": NOW - timedelta(weeks=10)}
    assert [m["_id"] for m in plans.course_summary(ongoing, contact(), LONDON, NOW)] == [
        "course:k1:email",
        "course:k1:sms",
    ]


def _issued(payer: str) -> dict:
    gbp = {"amount": 18000, "currency": "GBP"}
    return {
        "client_id": "c1",
        "invoice_id": "i1",
        "number": "INV-000001",
        "issued_on": datetime(2026, 3, 31).date(),
        "payer": payer,
        "lines": [{"description": "Therapy session"}],
        "total": gbp,
        "credit_applied": {"amount": 0, "currency": "GBP"},
    }


def test_an_invoice_goes_to_the_client_or_a_funder_with_an_address_and_says_nothing_clinical():
    now = datetime(2026, 3, 31, 9, tzinfo=UTC)
    [to_client] = plans.invoice(_issued("client"), None, now)
    assert (to_client["_id"], to_client["recipient"], to_client["channel"]) == (
        "invoice:i1:email",
        "client",
        "email",
    )
    assert to_client["due_at"] == now and to_client["invoice_id"] == "i1"
    assert "lines" not in to_client["context"] and to_client["context"]["issued_on"] == "2026-03-31"
    [to_funder] = plans.invoice(_issued("funder"), "claims@acme.test", now)
    assert to_funder["recipient"] == "funder"
    # billing's funding holds no e-mail for this funder: the practice sends it itself
    assert plans.invoice(_issued("funder"), None, now) == []
