"""Scheduling rules, given/when/then, no I/O. Dates: 2026-10-25 and 2027-03-28 are the last
Sundays of October and March, when Europe/London leaves and re-enters summer time."""

from datetime import UTC, date, datetime

import pytest

from services.scheduling.domain.session import (
    AttendSession,
    Booking,
    BookSession,
    CancelSession,
    MissSession,
    RescheduleSession,
    Session,
)
from services.scheduling.domain.therapist import RegisterTherapist, SetAvailability, Therapist
from shared.domain import Conflict, Invalid, NotFound, fold
from shared.events import NewEvent
from testkit.given import given

NOW = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
WEEKDAYS = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]


def utc(*args):
    return datetime(*args, tzinfo=UTC)


FIRST_MONDAY_9AM = utc(2026, 10, 5, 9, 0)


def registered(modalities=("video", "face_to_face"), rooms=("Room 1",)):
    return NewEvent(
        "TherapistRegistered",
        {
            "therapist_id": "t1",
            "name": "Ann Therapist",
            "email": "ann@rapport.test",
            "phone": None,
            "modalities": list(modalities),
            "rooms": list(rooms),
        },
    )


def hours(exceptions=()):
    return NewEvent(
        "AvailabilitySet",
        {"therapist_id": "t1", "weekly_hours": WEEKDAYS, "exceptions": list(exceptions)},
    )


def therapist(*extra):
    return fold(Therapist(), [registered(), hours(), *extra])


def booking(start, **changes):
    fields = {
        "session_id": "s1",
        "client_id": "c1",
        "kind": "treatment",
        "modality": "video",
        "starts_at": start,
    }
    fields.update(changes)
    return Booking(**fields)


def booked(start=FIRST_MONDAY_9AM, **changes):
    data = {
        "session_id": "s1",
        "client_id": "c1",
        "therapist_id": "t1",
        "starts_at": start,
        "ends_at": start.replace(minute=50),
        "kind": "treatment",
        "modality": "video",
        "room": None,
        "course_id": None,
        "number": None,
        "video_link": None,
        "video_room": None,
    }
    data.update(changes)
    return NewEvent("SessionBooked", data)


def book(start, status="active", th=None, **changes):
    return BookSession(booking(start, **changes), th or therapist(), status, NOW)


# -- therapists -------------------------------------------------------------------------------
def test_a_therapist_is_registered_once():
    cmd = RegisterTherapist(
        "t1", "Ann Therapist", "ann@rapport.test", ["video", "face_to_face"], ["Room 1"]
    )
    given(Therapist()).when(cmd).then([registered()])
    given(Therapist(), [registered()]).when(cmd).then_raises(Conflict, "already registered")


def test_face_to_face_needs_a_room():
    cmd = RegisterTherapist("t1", "Ann", "ann@rapport.test", ["face_to_face"], [])
    given(Therapist()).when(cmd).then_raises(Invalid, "room")


def test_availability_is_set_and_checked():
    given(Therapist(), [registered()]).when(SetAvailability(WEEKDAYS, [])).then([hours()])
    given(Therapist()).when(SetAvailability(WEEKDAYS, [])).then_raises(NotFound)
    backwards = [{"weekday": 0, "start": "17:00", "end": "09:00"}]
    given(Therapist(), [registered()]).when(SetAvailability(backwards, [])).then_raises(
        Invalid, "end after"
    )
    overlapping = [
        {"weekday": 0, "start": "09:00", "end": "12:00"},
        {"weekday": 0, "start": "11:00", "end": "13:00"},
    ]
    given(Therapist(), [registered()]).when(SetAvailability(overlapping, [])).then_raises(
        Invalid, "overlap"
    )
    leave = [{"start_date": date(2026, 11, 3), "end_date": date(2026, 11, 2), "reason": "leave"}]
    given(Therapist(), [registered()]).when(SetAvailability(WEEKDAYS, leave)).then_raises(
        Invalid, "exception"
    )


# -- booking one session ----------------------------------------------------------------------
def test_a_session_inside_working_hours_is_booked_for_fifty_minutes():
    given(Session()).when(book(utc(2026, 10, 5, 9, 0))).then([booked()])


def test_working_hours_are_local_time_in_summer():
    # 09:00 BST is 08:00 UTC; 16:30 BST + 50 minutes would end after 17:00 BST
    given(Session()).when(book(utc(2027, 7, 5, 8, 0))).then_types("SessionBooked")
    given(Session()).when(book(utc(2027, 7, 5, 7, 0))).then_raises(Conflict, "working hours")
    given(Session()).when(book(utc(2027, 7, 5, 15, 30))).then_raises(Conflict, "working hours")


def test_no_booking_in_the_past_on_leave_at_odd_minutes_or_at_weekends():
    given(Session()).when(book(utc(2026, 9, 30, 9, 0))).then_raises(Invalid, "past")
    on_leave = therapist(
        hours(
            [
                {
                    "start_date": date(2026, 10, 5),
                    "end_date": date(2026, 10, 5),
                    "reason": "annual leave",
                }
            ]
        )
    )
    given(Session()).when(book(utc(2026, 10, 5, 9, 0), th=on_leave)).then_raises(
        Conflict, "annual leave"
    )
    given(Session()).when(book(utc(2026, 10, 5, 9, 5))).then_raises(Invalid, "10-minute")
    given(Session()).when(book(utc(2026, 10, 3, 10, 0))).then_raises(Conflict, "working hours")


def test_the_client_must_be_registered_and_not_discharged():
    given(Session()).when(book(utc(2026, 10, 5, 9, 0), status=None)).then_raises(
        NotFound, "register"
    )
    given(Session()).when(book(utc(2026, 10, 5, 9, 0), status="discharged")).then_raises(
        Conflict, "discharged"
    )


def test_modality_and_room_must_fit_the_therapist():
    start = utc(2026, 10, 5, 9, 0)
    given(Session()).when(book(start, modality="telephone")).then_raises(Invalid, "telephone")
    given(Session()).when(book(start, modality="face_to_face")).then_raises(Invalid, "needs a room")
    given(Session()).when(book(start, modality="face_to_face", room="Room 9")).then_raises(
        Invalid, "Room 9"
    )
    given(Session()).when(book(start, room="Room 1")).then_raises(Invalid, "only face-to-face")
    events = (
        given(Session())
        .when(book(start, modality="face_to_face", room="Room 1"))
        .then_types("SessionBooked")
    )
    assert events[0].data["room"] == "Room 1" and events[0].data["video_link"] is None


def test_a_session_is_booked_once():
    given(Session(), [booked()]).when(book(utc(2026, 10, 5, 9, 0))).then_raises(
        Conflict, "already exists"
    )


# -- changing a session -----------------------------------------------------------------------
def facts(start=FIRST_MONDAY_9AM):
    return {
        "session_id": "s1",
        "client_id": "c1",
        "therapist_id": "t1",
        "starts_at": start,
        "ends_at": start.replace(minute=50),
    }


def test_cancelling_more_than_a_day_ahead_is_not_late():
    given(Session(), [booked()]).when(CancelSession("client", "unwell", NOW)).then(
        [
            NewEvent(
                "SessionCancelled", {**facts(), "by": "client", "reason": "unwell", "late": False}
            )
        ]
    )


def test_cancelling_within_24_hours_is_late():
    evening_before = utc(2026, 10, 4, 18, 0)
    given(Session(), [booked()]).when(CancelSession("therapist", "ill", evening_before)).then(
        [
            NewEvent(
                "SessionCancelled", {**facts(), "by": "therapist", "reason": "ill", "late": True}
            )
        ]
    )


def test_attend_and_miss_only_once_the_session_has_started():
    given(Session(), [booked()]).when(AttendSession(utc(2026, 10, 5, 8, 59))).then_raises(
        Conflict, "not started"
    )
    given(Session(), [booked()]).when(AttendSession(utc(2026, 10, 5, 9, 0))).then(
        [NewEvent("SessionAttended", {**facts(), "kind": "treatment"})]
    )
    given(Session(), [booked()]).when(MissSession(utc(2026, 10, 5, 10, 0))).then(
        [NewEvent("SessionMissed", {**facts(), "kind": "treatment"})]
    )


def attended():
    return NewEvent("SessionAttended", {**facts(), "kind": "treatment"})


def cancelled():
    return NewEvent("SessionCancelled", {**facts(), "by": "client", "reason": "x", "late": False})


def reschedule(start, status="active", **kw):
    return RescheduleSession(
        starts_at=start, therapist=therapist(), client_status=status, now=NOW, **kw
    )


def test_illegal_transitions_are_refused_with_the_reason():
    later = utc(2026, 10, 5, 10, 0)
    given(Session(), [booked(), cancelled()]).when(AttendSession(later)).then_raises(
        Conflict, "cancelled"
    )
    given(Session(), [booked(), attended()]).when(reschedule(later)).then_raises(
        Conflict, "attended"
    )
    given(Session(), [booked(), attended()]).when(MissSession(later)).then_raises(
        Conflict, "attended"
    )
    given(Session(), [booked(), cancelled()]).when(CancelSession("client", "x", NOW)).then_raises(
        Conflict, "cancelled"
    )
    given(Session()).when(CancelSession("client", "x", NOW)).then_raises(NotFound)


def test_rescheduling_moves_the_session_and_keeps_the_old_time():
    new = utc(2026, 10, 6, 13, 0)
    given(Session(), [booked()]).when(reschedule(new, reason="school run")).then(
        [
            NewEvent(
                "SessionRescheduled",
                {
                    **facts(new),
                    "previous_starts_at": utc(2026, 10, 5, 9, 0),
                    "modality": "video",
                    "room": None,
                    "reason": "school run",
                    "video_room": None,
                    "video_link": None,
                },
            )
        ]
    )


def test_rescheduling_follows_the_booking_rules():
    given(Session(), [booked()]).when(reschedule(utc(2026, 10, 6, 18, 0))).then_raises(
        Conflict, "working hours"
    )
    given(Session(), [booked()]).when(
        reschedule(utc(2026, 10, 6, 9, 0), status="discharged")
    ).then_raises(Conflict, "discharged")
    given(Session(), [booked()]).when(reschedule(utc(2026, 10, 5, 9, 0))).then_raises(
        Conflict, "already at"
    )
    moved = (
        given(Session(), [booked()])
        .when(reschedule(utc(2026, 10, 5, 9, 0), modality="face_to_face", room="Room 1"))
        .then_types("SessionRescheduled")
    )
    assert moved[0].data["room"] == "Room 1"


@pytest.mark.parametrize("start", [utc(2026, 10, 5, 8, 0), utc(2026, 10, 5, 15, 0)])
def test_the_first_and_last_hour_of_the_day_fit(start):  # 09:00 and 16:00 BST
    given(Session()).when(book(start)).then_types("SessionBooked")
