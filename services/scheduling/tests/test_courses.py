"""Courses and boosters, given/when/then, no I/O."""

from datetime import UTC, date, datetime

from services.scheduling.domain import diary
from services.scheduling.domain.courses import BookCourse, Course, Plan, PlanBoosters
from services.scheduling.domain.rooms import UrlRooms, VideoRooms, room_name
from services.scheduling.domain.therapist import Therapist
from shared.domain import Conflict, NotFound, fold
from testkit.given import given

from .test_domain import hours, registered

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def plan(*extra, busy=(), status="active", modality="video", room=None):
    th = fold(Therapist(), [registered(), hours(), *extra])
    return Plan(
        client_id="c1",
        client_status=status,
        therapist=th,
        modality=modality,
        room=room,
        now=NOW,
        busy=frozenset(busy),
        rooms=VideoRooms(UrlRooms("https://video.test", "room-secret")),
    )


def course(start, p=None, count=16, interval=1):
    return BookCourse("k1", p or plan(), start, count, interval)


def starts(events):
    return [e.data["starts_at"] for e in events if e.type == "SessionBooked"]


def test_sixteen_weekly_sessions_in_one_command():
    events = (
        given(Course())
        .when(course(utc(2026, 9, 7, 9, 0)))
        .then_types("CourseBooked", *["SessionBooked"] * 16)
    )
    head = events[0].data
    assert head["count"] == 16 and head["unbooked"] == [] and len(head["session_ids"]) == 16
    assert [e.data["number"] for e in events[1:]] == list(range(1, 17))
    assert {e.data["kind"] for e in events[1:]} == {"treatment"}
    assert {e.data["course_id"] for e in events[1:]} == {"k1"}
    room = room_name("room-secret", "k1-01", utc(2026, 9, 7, 9, 0))
    assert events[1].data["video_room"] == room
    assert events[1].data["video_link"] == f"https://video.test/{room}"


def test_a_course_across_the_last_sunday_of_october_keeps_local_time():
    # Mondays 10:00 Europe/London: 09:00 UTC in BST, 10:00 UTC after 25 October 2026
    events = (
        given(Course())
        .when(course(utc(2026, 10, 12, 9, 0), count=4))
        .then_types("CourseBooked", *["SessionBooked"] * 4)
    )
    assert starts(events) == [
        utc(2026, 10, 12, 9),
        utc(2026, 10, 19, 9),
        utc(2026, 10, 26, 10),
        utc(2026, 11, 2, 10),
    ]
    assert {diary.local(s).hour for s in starts(events)} == {10}


def test_a_course_across_the_last_sunday_of_march_keeps_local_time():
    events = (
        given(Course())
        .when(course(utc(2027, 3, 15, 10, 0), count=3))
        .then_types("CourseBooked", *["SessionBooked"] * 3)
    )
    assert starts(events) == [utc(2027, 3, 15, 10), utc(2027, 3, 22, 10), utc(2027, 3, 29, 9)]


def test_a_session_on_the_therapists_leave_is_reported_with_alternatives_that_week():
    leave = hours(
        [{"start_date": date(2026, 11, 2), "end_date": date(2026, 11, 2), "reason": "annual leave"}]
    )
    events = (
        given(Course())
        .when(course(utc(2026, 10, 12, 9, 0), p=plan(leave), count=5))
        .then_types("CourseBooked", *["SessionBooked"] * 4)
    )
    unbooked = events[0].data["unbooked"]
    assert [u["number"] for u in unbooked] == [4]
    assert (
        unbooked[0]["wanted_at"] == utc(2026, 11, 2, 10) and "annual leave" in unbooked[0]["reason"]
    )
    assert unbooked[0]["alternatives"] == [
        utc(2026, 11, 3, 9),
        utc(2026, 11, 3, 10),
        utc(2026, 11, 3, 11),
    ]
    assert "k1-04" not in events[0].data["session_ids"] and len(events[0].data["session_ids"]) == 4


def test_a_taken_slot_is_reported_and_its_alternatives_avoid_it():
    taken = diary.scope_keys("therapist:t1", utc(2026, 10, 19, 9)) + diary.scope_keys(
        "therapist:t1", utc(2026, 10, 19, 10)
    )
    events = (
        given(Course())
        .when(course(utc(2026, 10, 12, 9, 0), p=plan(busy=taken), count=2))
        .then_types("CourseBooked", "SessionBooked")
    )
    (gap,) = events[0].data["unbooked"]
    assert gap["number"] == 2 and "therapist already has a session" in gap["reason"]
    assert gap["alternatives"] == [
        utc(2026, 10, 19, 8),
        utc(2026, 10, 19, 11),
        utc(2026, 10, 19, 12),
    ]


def test_the_clients_other_sessions_count_too():
    taken = diary.scope_keys("client:c1", utc(2026, 10, 12, 9, 0))
    events = (
        given(Course())
        .when(course(utc(2026, 10, 12, 9, 0), p=plan(busy=taken), count=2))
        .then_types("CourseBooked", "SessionBooked")
    )
    assert "client already has a session" in events[0].data["unbooked"][0]["reason"]


def test_nothing_bookable_is_a_conflict_not_an_empty_course():
    given(Course()).when(course(utc(2026, 10, 10, 9, 0), count=2)).then_raises(
        Conflict, "working hours"
    )


def test_a_course_for_an_unknown_or_discharged_client_is_refused():
    given(Course()).when(course(utc(2026, 10, 12, 9), p=plan(status=None))).then_raises(NotFound)
    given(Course()).when(course(utc(2026, 10, 12, 9), p=plan(status="discharged"))).then_raises(
        Conflict, "discharged"
    )
    given(Course(), [object()]).when(course(utc(2026, 10, 12, 9))).then_raises(
        Conflict, "already exists"
    )


def test_boosters_every_two_months_on_the_same_weekday_and_local_time():
    # first booster Monday 1 March 2027 10:00 GMT; then near 1 May (BST) and 1 July
    cmd = PlanBoosters("b1", plan(), utc(2027, 3, 1, 10, 0), count=3, interval_months=2)
    events = given(Course()).when(cmd).then_types("BoostersPlanned", *["SessionBooked"] * 3)
    assert events[0].data["interval_months"] == 2 and events[0].data["unbooked"] == []
    times = starts(events)
    assert [diary.local(t).weekday() for t in times] == [0, 0, 0]
    assert [diary.local(t).hour for t in times] == [10, 10, 10]
    assert [diary.local(t).date() for t in times] == [
        date(2027, 3, 1),
        date(2027, 5, 3),
        date(2027, 6, 28),
    ]
    assert {e.data["kind"] for e in events[1:]} == {"booster"}


def test_diary_rules():
    day = date(2026, 10, 5)
    late_start = fold(Therapist(), [registered(), hours()]).availability
    assert diary.hourly_starts(late_start, day)[0] == utc(2026, 10, 5, 8)  # 09:00 BST
    assert len(diary.hourly_starts(late_start, day)) == 8
    a, b, c = (
        diary.claim_keys(utc(2026, 10, 5, 9, m), therapist_id="t", client_id="c", room=None)
        for m in (0, 40, 50)
    )
    assert set(a) & set(b) and not set(a) & set(c)
    assert diary.add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
