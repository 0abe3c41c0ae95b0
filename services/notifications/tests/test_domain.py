"""Domain tier: the notification and preferences deciders (given/when/then), quiet hours,
backoff and identities. Pure, no I/O."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.notifications.domain import (
    NotificationDecider,
    PreferencesDecider,
    QuietHours,
    RecordFailure,
    RecordSent,
    Schedule,
    SetPreferences,
    Void,
    deliver_at,
    message_id,
    quiet_ends,
    retry_delay,
)
from shared.domain import Conflict, Invalid
from shared.events import NewEvent
from testkit.given import given

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
INFO = {
    "notification_id": "reminder:s1:20260303T1000Z:email",
    "kind": "reminder",
    "channel": "email",
    "client_id": "c1",
    "recipient": "client",
    "due_at": NOW,
}
IDENT = {k: v for k, v in INFO.items() if k != "due_at"}
SCHEDULED = NewEvent("NotificationScheduled", {**IDENT, "due_at": NOW})
SENT = NewEvent("NotificationSent", {**IDENT, "sent_at": NOW, "attempts": 1})
decider = NotificationDecider()


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# -- a notification's life ----------------------------------------------------------------------
def test_scheduling_a_new_notification_records_it():
    given(decider, []).when(Schedule(INFO)).then([SCHEDULED])


def test_scheduling_it_again_changes_nothing():
    given(decider, [SCHEDULED]).when(Schedule(INFO)).then([])


def test_a_send_is_recorded_once_however_often_it_is_reported():
    given(decider, [SCHEDULED]).when(RecordSent(INFO, NOW, 1)).then([SENT])
    given(decider, [SCHEDULED, SENT]).when(RecordSent(INFO, NOW, 2)).then([])


def test_a_send_reported_before_it_was_announced_records_both():
    given(decider, []).when(RecordSent(INFO, NOW, 1)).then_types(
        "NotificationScheduled", "NotificationSent"
    )


def test_a_retryable_failure_keeps_it_scheduled_and_a_final_one_ends_it():
    failure = RecordFailure(INFO, NOW, 1, "smtp: ConnectionRefusedError", final=False)
    produced = given(decider, [SCHEDULED]).when(failure).then_types("NotificationFailed")
    assert produced[0].data["final"] is False
    history = [SCHEDULED, *produced]
    final = RecordFailure(INFO, NOW, 6, "smtp: ConnectionRefusedError", final=True)
    last = given(decider, history).when(final).then_types("NotificationFailed")
    given(decider, history + last).when(Void(INFO, "cancelled")).then([])


def test_nothing_fails_or_is_voided_after_it_was_sent():
    given(decider, [SCHEDULED, SENT]).when(
        RecordFailure(INFO, NOW, 2, "late", final=True)
    ).then_raises(Conflict, "sent already")
    given(decider, [SCHEDULED, SENT]).when(Void(INFO, "appointment cancelled")).then([])


def test_a_voided_notification_can_be_scheduled_again_when_the_appointment_moves_back():
    voided = NewEvent("NotificationVoided", {**IDENT, "reason": "appointment rescheduled"})
    given(decider, [SCHEDULED]).when(Void(INFO, "appointment rescheduled")).then([voided])
    given(decider, [SCHEDULED, voided]).when(Schedule(INFO)).then([SCHEDULED])


# -- preferences --------------------------------------------------------------------------------
def prefs(channels=("email",), lead=24 * 60, quiet=("21:00", "08:00"), consented=("email", "sms")):
    return SetPreferences(
        "c1",
        tuple(channels),
        lead,
        quiet[0] if quiet else None,
        quiet[1] if quiet else None,
        tuple(consented),
    )


def test_preferences_within_consent_are_recorded():
    given(PreferencesDecider(), []).when(prefs(("sms",), 120)).then(
        [
            NewEvent(
                "NotificationPreferencesSet",
                {
                    "client_id": "c1",
                    "channels": ["sms"],
                    "reminder_lead_minutes": 120,
                    "quiet_start": "21:00",
                    "quiet_end": "08:00",
                },
            )
        ]
    )


def test_a_channel_without_consent_is_refused_naming_the_field():
    err = (
        given(PreferencesDecider(), [])
        .when(prefs(("sms",), consented=("email",)))
        .then_raises(Invalid, "sms")
    )
    assert err.field == "channels"


def test_the_same_preferences_again_change_nothing():
    first = given(PreferencesDecider(), []).when(prefs()).then_types("NotificationPreferencesSet")
    given(PreferencesDecider(), first).when(prefs()).then([])


def test_no_quiet_hours_is_a_valid_choice():
    given(PreferencesDecider(), []).when(prefs(quiet=None)).then_types("NotificationPreferencesSet")


# -- quiet hours --------------------------------------------------------------------------------
QUIET = QuietHours(time(21), time(8))


@pytest.mark.parametrize(
    "local,inside",
    [
        (time(20, 59), False),
        (time(21), True),
        (time(23, 30), True),
        (time(0, 5), True),
        (time(7, 59), True),
        (time(8), False),
    ],
)
def test_quiet_hours_run_past_midnight(local, inside):
    assert QUIET.contains(local) is inside


def test_a_message_due_at_night_waits_for_the_morning_in_london_time():
    # given 22:30 in London in summer (21:30 UTC), when asked, then 08:00 BST next day (07:00 UTC)
    assert quiet_ends(utc(2026, 7, 1, 21, 30), QUIET, LONDON) == utc(2026, 7, 2, 7, 0)
    # and in winter the same wall-clock rule gives 08:00 UTC
    assert quiet_ends(utc(2026, 1, 14, 22, 30), QUIET, LONDON) == utc(2026, 1, 15, 8, 0)
    assert quiet_ends(utc(2026, 1, 14, 12, 0), QUIET, LONDON) is None


def test_deliver_at_holds_a_night_message_until_morning():
    due = utc(2026, 1, 14, 23, 0)
    assert deliver_at(due, QUIET, LONDON, now=utc(2026, 1, 14, 12)) == utc(2026, 1, 15, 8, 0)


def test_deliver_at_sends_before_the_quiet_hours_when_morning_is_too_late():
    # given an 07:30 appointment and a reminder due at 23:00 the night before
    due, latest = utc(2026, 1, 14, 23, 0), utc(2026, 1, 15, 7, 0)
    # then it goes just before quiet hours began that evening
    assert deliver_at(due, QUIET, LONDON, now=utc(2026, 1, 14, 12), latest=latest) == utc(
        2026, 1, 14, 20, 55
    )
    # and if that moment has passed too, at once
    now = utc(2026, 1, 14, 23, 10)
    assert deliver_at(due, QUIET, LONDON, now=now, latest=latest) == now


def test_deliver_at_without_quiet_hours_is_the_due_time_or_now():
    assert deliver_at(utc(2026, 3, 14, 23), None, LONDON, now=NOW) == utc(2026, 3, 14, 23)
    assert deliver_at(utc(2020, 1, 1), None, LONDON, now=NOW) == NOW


# -- retries and identities ---------------------------------------------------------------------
def test_backoff_doubles_up_to_the_cap():
    assert [retry_delay(n, 30).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(20, 30, cap=3600) == timedelta(hours=1)


def test_the_message_id_is_stable_per_key_and_differs_between_keys():
    assert message_id("a:1") == message_id("a:1") != message_id("a:2")
    assert message_id("a:1").startswith("<") and message_id("a:1").endswith(
        "@rapport.notifications>"
    )
