"""Booking many sessions in one command: a 16-session IPT course (weekly, clinical.md) and
booster sessions after it ("bi-monthly" read as every two months, clinical.md). Pure.

The plan keeps the local wall-clock time across the clock changes (a 10:00 session stays
at 10:00 Europe/London, so its UTC time moves by an hour). What cannot be booked is
returned with the reason and the nearest free slots that week, never silently dropped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain import Conflict
from shared.events import NewEvent

from . import diary
from .rooms import VideoRooms
from .session import Booking, booked_data, check_client, check_place, time_problem
from .therapist import TherapistState

MAX_ALTERNATIVES = 3


@dataclass(frozen=True)
class Plan:
    """The facts every session of a plan shares, and the claims already taken in the store."""

    client_id: str
    client_status: str | None
    therapist: TherapistState
    modality: str
    room: str | None
    now: datetime
    busy: frozenset[str] = frozenset()  # claim keys (diary.claim_keys) already taken
    rooms: VideoRooms | None = None  # how each video session's room and links are made


@dataclass(frozen=True)
class BookCourse:
    course_id: str
    plan: Plan
    first_starts_at: datetime
    count: int = 16
    interval_weeks: int = 1


@dataclass(frozen=True)
class PlanBoosters:
    plan_id: str
    plan: Plan
    first_starts_at: datetime
    count: int
    interval_months: int = 2


@dataclass
class _Outcome:
    booked: list[tuple[int, datetime]] = field(default_factory=list)
    unbooked: list[dict] = field(default_factory=list)


def _keys(plan: Plan, start: datetime) -> list[str]:
    return diary.claim_keys(
        start, therapist_id=plan.therapist.therapist_id, client_id=plan.client_id, room=plan.room
    )


def refusal(plan: Plan, start: datetime, taken: set[str]) -> str | None:
    problem = time_problem(plan.therapist, start, plan.now)
    if problem is not None:
        return problem.detail
    clash = next((k for k in _keys(plan, start) if k in taken), None)
    return diary.clash_reason(clash) if clash else None


def alternatives(plan: Plan, wanted: datetime, taken: set[str]) -> list[datetime]:
    """The free hourly slots of the wanted (local, Monday-Sunday) week, nearest first."""
    days = diary.week_of(diary.local(wanted).date())
    free = [
        s
        for day in days
        for s in diary.hourly_starts(plan.therapist.availability, day)
        if refusal(plan, s, taken) is None
    ]
    return sorted(free, key=lambda s: (abs(s - wanted), s))[:MAX_ALTERNATIVES]


def plan_sessions(plan: Plan, wanted: list[tuple[int, datetime]]) -> _Outcome:
    taken = set(plan.busy)
    out = _Outcome()
    for number, start in wanted:
        reason = refusal(plan, start, taken)
        if reason is None:
            out.booked.append((number, start))
            taken.update(_keys(plan, start))
        else:
            out.unbooked.append(
                {
                    "number": number,
                    "wanted_at": start,
                    "reason": reason,
                    "alternatives": alternatives(plan, start, taken),
                }
            )
    return out


def weekly(first: datetime, count: int, interval_weeks: int) -> list[tuple[int, datetime]]:
    wall = diary.local(first)
    return [
        (n, diary.to_utc(wall.date() + timedelta(weeks=(n - 1) * interval_weeks), wall.time()))
        for n in range(1, count + 1)
    ]


def monthly(first: datetime, count: int, interval_months: int) -> list[tuple[int, datetime]]:
    """Every `interval_months`, on the same weekday nearest the same day of the month,
    so the booster falls on a day the therapist usually works."""
    wall = diary.local(first)
    out = []
    for n in range(1, count + 1):
        day = diary.add_months(wall.date(), (n - 1) * interval_months)
        shift = (wall.weekday() - day.weekday() + 3) % 7 - 3
        out.append((n, diary.to_utc(day + timedelta(days=shift), wall.time())))
    return out


def _session_events(
    plan: Plan, outcome: _Outcome, prefix: str, kind: str, course_id: str | None
) -> list[NewEvent]:
    events = []
    for number, start in outcome.booked:
        sid = f"{prefix}-{number:02d}"
        booking = Booking(
            session_id=sid,
            client_id=plan.client_id,
            kind=kind,
            modality=plan.modality,
            starts_at=start,
            room=plan.room,
            course_id=course_id,
            number=number if course_id else None,
            plan_id=None if course_id else prefix,
        )
        events.append(
            NewEvent("SessionBooked", booked_data(booking, plan.therapist.therapist_id, plan.rooms))
        )
    return events


def _check(plan: Plan, outcome: _Outcome, what: str) -> None:
    if not outcome.booked:
        reasons = "; ".join(sorted({u["reason"] for u in outcome.unbooked}))
        raise Conflict(f"none of the {what} could be booked: {reasons}", code="nothing_bookable")


def _course(c: BookCourse) -> list[NewEvent]:
    outcome = plan_sessions(c.plan, weekly(c.first_starts_at, c.count, c.interval_weeks))
    _check(c.plan, outcome, "course's sessions")
    sessions = _session_events(c.plan, outcome, c.course_id, "treatment", c.course_id)
    return [
        NewEvent(
            "CourseBooked",
            {
                "course_id": c.course_id,
                "client_id": c.plan.client_id,
                "therapist_id": c.plan.therapist.therapist_id,
                "session_ids": [e.data["session_id"] for e in sessions],
                "count": c.count,
                "interval_weeks": c.interval_weeks,
                "first_starts_at": c.first_starts_at,
                "unbooked": outcome.unbooked,
            },
        )
    ] + sessions


def _boosters(c: PlanBoosters) -> list[NewEvent]:
    outcome = plan_sessions(c.plan, monthly(c.first_starts_at, c.count, c.interval_months))
    _check(c.plan, outcome, "booster sessions")
    sessions = _session_events(c.plan, outcome, c.plan_id, "booster", None)
    return [
        NewEvent(
            "BoostersPlanned",
            {
                "plan_id": c.plan_id,
                "client_id": c.plan.client_id,
                "therapist_id": c.plan.therapist.therapist_id,
                "session_ids": [e.data["session_id"] for e in sessions],
                "count": c.count,
                "interval_months": c.interval_months,
                "first_starts_at": c.first_starts_at,
                "unbooked": outcome.unbooked,
            },
        )
    ] + sessions


DECIDERS: dict[type, Callable[[Any], list[NewEvent]]] = {
    BookCourse: _course,
    PlanBoosters: _boosters,
}


class Course:
    """The course stream holds CourseBooked (or BoostersPlanned); its sessions get their
    own streams, appended in the same transaction."""

    def initial_state(self) -> bool:
        return False

    def evolve(self, state: bool, event) -> bool:
        return True

    def decide(self, exists: bool, command) -> list[NewEvent]:
        plan = command.plan
        if exists:
            raise Conflict("that course or plan already exists")
        check_client(plan.client_id, plan.client_status)
        check_place(plan.therapist, plan.modality, plan.room)
        return DECIDERS[type(command)](command)
