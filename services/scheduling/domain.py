"""Deciders of scheduling: a therapist (who is bookable, when) and a session (its life from
booking to attended, missed or cancelled). Pure: the application passes in what a rule
needs to know (the therapist's state, the client's status in the directory, the clock)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.domain import Conflict, DomainError, Invalid, NotFound
from shared.events import NewEvent

from . import diary
from .diary import Availability


# -- therapist ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TherapistState:
    therapist_id: str | None = None
    name: str = ""
    modalities: tuple[str, ...] = ()
    rooms: tuple[str, ...] = ()
    availability: Availability = field(default_factory=Availability)

    @property
    def exists(self) -> bool:
        return self.therapist_id is not None


@dataclass(frozen=True)
class RegisterTherapist:
    therapist_id: str
    name: str
    email: str
    modalities: list[str]
    rooms: list[str]
    phone: str | None = None


@dataclass(frozen=True)
class SetAvailability:
    weekly_hours: list[dict]  # {"weekday", "start": "HH:MM", "end": "HH:MM"}
    exceptions: list[dict]  # {"start_date", "end_date", "reason"}


class Therapist:
    def initial_state(self) -> TherapistState:
        return TherapistState()

    def evolve(self, state: TherapistState, event) -> TherapistState:
        d = event.data
        if event.type == "TherapistRegistered":
            return replace(
                state,
                therapist_id=d["therapist_id"],
                name=d["name"],
                modalities=tuple(d["modalities"]),
                rooms=tuple(d["rooms"]),
            )
        if event.type == "AvailabilitySet":
            return replace(state, availability=Availability.from_event(d))
        return state

    def decide(self, state: TherapistState, command) -> list[NewEvent]:
        if isinstance(command, RegisterTherapist):
            if state.exists:
                raise Conflict(f"therapist {command.therapist_id} is already registered")
            if "face_to_face" in command.modalities and not command.rooms:
                raise Invalid(
                    "a therapist offering face-to-face needs at least one room", field="rooms"
                )
            return [
                NewEvent(
                    "TherapistRegistered",
                    {
                        "therapist_id": command.therapist_id,
                        "name": command.name,
                        "email": command.email,
                        "phone": command.phone,
                        "modalities": list(command.modalities),
                        "rooms": list(command.rooms),
                    },
                )
            ]
        if isinstance(command, SetAvailability):
            if not state.exists:
                raise NotFound("no such therapist")
            _check_hours(command.weekly_hours, command.exceptions)
            return [
                NewEvent(
                    "AvailabilitySet",
                    {
                        "therapist_id": state.therapist_id,
                        "weekly_hours": list(command.weekly_hours),
                        "exceptions": list(command.exceptions),
                    },
                )
            ]
        raise TypeError(f"unknown command {command!r}")


def _check_hours(weekly_hours: list[dict], exceptions: list[dict]) -> None:
    by_day: dict[int, list] = {}
    for i, h in enumerate(weekly_hours):
        try:
            start, end = diary.parse_hhmm(h["start"]), diary.parse_hhmm(h["end"])
        except ValueError as err:
            raise Invalid(str(err), field=f"weekly_hours.{i}")
        if start >= end:
            raise Invalid("a working period must end after it starts", field=f"weekly_hours.{i}")
        for other_start, other_end in by_day.get(h["weekday"], []):
            if start < other_end and other_start < end:
                raise Invalid("working periods on one day overlap", field=f"weekly_hours.{i}")
        by_day.setdefault(h["weekday"], []).append((start, end))
    for i, e in enumerate(exceptions):
        if e["end_date"] < e["start_date"]:
            raise Invalid(
                "an exception must end on or after its first day", field=f"exceptions.{i}"
            )


# -- session ----------------------------------------------------------------------------------
BOOKED, CANCELLED, ATTENDED, MISSED = "booked", "cancelled", "attended", "missed"


@dataclass(frozen=True)
class SessionState:
    status: str | None = None
    facts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Booking:
    """What is asked for when booking (one session, or one of a course or boosters)."""

    session_id: str
    client_id: str
    kind: str
    modality: str
    starts_at: datetime
    room: str | None = None
    course_id: str | None = None
    number: int | None = None
    video_link: str | None = None
    plan_id: str | None = None  # the booster plan this session belongs to


@dataclass(frozen=True)
class BookSession:
    booking: Booking
    therapist: TherapistState
    client_status: str | None  # from the client directory; None = not registered
    now: datetime


@dataclass(frozen=True)
class RescheduleSession:
    starts_at: datetime
    therapist: TherapistState
    client_status: str | None
    now: datetime
    modality: str | None = None
    room: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CancelSession:
    by: str
    reason: str
    now: datetime


@dataclass(frozen=True)
class AttendSession:
    now: datetime


@dataclass(frozen=True)
class MissSession:
    now: datetime


def check_client(client_id: str, status: str | None) -> None:
    if status is None:
        raise NotFound(f"client {client_id} is not registered; register them in records first")
    if status == "discharged":
        raise Conflict(f"client {client_id} has been discharged", code="client_discharged")


def check_place(therapist: TherapistState, modality: str, room: str | None) -> None:
    """Rules about how and where a session happens, whenever it is."""
    if not therapist.exists:
        raise NotFound("no such therapist")
    if modality not in therapist.modalities:
        raise Invalid(f"{therapist.name} does not offer {modality} sessions", field="modality")
    if modality == "face_to_face":
        if not room:
            raise Invalid("a face-to-face session needs a room", field="room")
        if room not in therapist.rooms:
            raise Invalid(f"{therapist.name} does not work in room {room}", field="room")
    elif room:
        raise Invalid("only face-to-face sessions take a room", field="room")


def time_problem(therapist: TherapistState, start: datetime, now: datetime) -> DomainError | None:
    """Why the therapist cannot see anyone at `start` (None if they can). Returned rather
    than raised so that a course can report it per session instead of failing whole."""
    if not diary.on_bucket(start):
        return Invalid("sessions start on a 10-minute boundary", field="starts_at")
    if start <= now:
        return Invalid("that time is in the past", field="starts_at")
    leave = diary.leave_on(therapist.availability, diary.local(start).date())
    if leave:
        return Conflict(f"the therapist is away that day ({leave.reason})", code="therapist_away")
    if not diary.within_hours(therapist.availability, start):
        return Conflict("outside the therapist's working hours", code="outside_hours")
    return None


def check_bookable(
    therapist: TherapistState, modality: str, room: str | None, start: datetime, now: datetime
) -> None:
    check_place(therapist, modality, room)
    problem = time_problem(therapist, start, now)
    if problem is not None:
        raise problem


class Session:
    def initial_state(self) -> SessionState:
        return SessionState()

    def evolve(self, state: SessionState, event) -> SessionState:
        d = dict(event.data)
        if event.type == "SessionBooked":
            return SessionState(BOOKED, d)
        if event.type == "SessionRescheduled":
            facts = {
                **state.facts,
                **{k: d[k] for k in ("starts_at", "ends_at", "modality", "room")},
            }
            return SessionState(BOOKED, facts)
        if event.type == "SessionCancelled":
            return SessionState(
                CANCELLED, {**state.facts, "cancelled_by": d["by"], "late": d["late"]}
            )
        status = {"SessionAttended": ATTENDED, "SessionMissed": MISSED}.get(event.type)
        return replace(state, status=status) if status else state

    def decide(self, state: SessionState, command) -> list[NewEvent]:
        if isinstance(command, BookSession):
            return self._book(state, command)
        if state.status is None:
            raise NotFound("no such session")
        if state.status != BOOKED:
            raise Conflict(
                f"the session is {state.status}; it cannot be {_verb(command)}",
                code=f"session_{state.status}",
            )
        if isinstance(command, RescheduleSession):
            return self._reschedule(state, command)
        if isinstance(command, CancelSession):
            late = state.facts["starts_at"] - command.now < diary.LATE_CANCELLATION
            return [
                NewEvent(
                    "SessionCancelled",
                    {**_facts(state), "by": command.by, "reason": command.reason, "late": late},
                )
            ]
        if isinstance(command, (AttendSession, MissSession)):
            if command.now < state.facts["starts_at"]:
                raise Conflict("the session has not started yet", code="not_started")
            kind = "SessionAttended" if isinstance(command, AttendSession) else "SessionMissed"
            return [NewEvent(kind, {**_facts(state), "kind": state.facts["kind"]})]
        raise TypeError(f"unknown command {command!r}")

    def _book(self, state: SessionState, command: BookSession) -> list[NewEvent]:
        b = command.booking
        if state.status is not None:
            raise Conflict(f"session {b.session_id} already exists")
        check_client(b.client_id, command.client_status)
        check_bookable(command.therapist, b.modality, b.room, b.starts_at, command.now)
        return [NewEvent("SessionBooked", booked_data(b, command.therapist.therapist_id))]

    def _reschedule(self, state: SessionState, command: RescheduleSession) -> list[NewEvent]:
        f = state.facts
        check_client(f["client_id"], command.client_status)
        modality = command.modality or f["modality"]
        room = command.room if command.modality or command.room else f.get("room")
        if modality != "face_to_face":
            room = None
        check_bookable(command.therapist, modality, room, command.starts_at, command.now)
        if (
            command.starts_at == f["starts_at"]
            and modality == f["modality"]
            and room == f.get("room")
        ):
            raise Conflict("the session is already at that time and place", code="unchanged")
        return [
            NewEvent(
                "SessionRescheduled",
                {
                    **_facts(state),
                    "starts_at": command.starts_at,
                    "ends_at": command.starts_at + diary.SESSION,
                    "previous_starts_at": f["starts_at"],
                    "modality": modality,
                    "room": room,
                    "reason": command.reason,
                },
            )
        ]


def booked_data(b: Booking, therapist_id: str) -> dict[str, Any]:
    return {
        "session_id": b.session_id,
        "client_id": b.client_id,
        "therapist_id": therapist_id,
        "starts_at": b.starts_at,
        "ends_at": b.starts_at + diary.SESSION,
        "kind": b.kind,
        "modality": b.modality,
        "room": b.room if b.modality == "face_to_face" else None,
        "course_id": b.course_id,
        "number": b.number,
        "video_link": b.video_link if b.modality == "video" else None,
        **({"plan_id": b.plan_id} if b.plan_id else {}),
    }


def _facts(state: SessionState) -> dict:
    return {
        k: state.facts[k]
        for k in ("session_id", "client_id", "therapist_id", "starts_at", "ends_at")
    }


def _verb(command) -> str:
    return {
        RescheduleSession: "rescheduled",
        CancelSession: "cancelled",
        AttendSession: "marked attended",
        MissSession: "marked missed",
    }.get(type(command), "changed")
