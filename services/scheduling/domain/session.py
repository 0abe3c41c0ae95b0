"""The session decider: a session's life from booking to attended, missed or cancelled, and
the rules of where and when one may be (shared with courses). Pure: the application passes
in what a rule needs to know (the therapist's state, the client's status in the directory,
the clock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.domain import Conflict, DomainError, Invalid, NotFound
from shared.events import NewEvent

from . import diary
from .rooms import VideoRooms
from .therapist import TherapistState

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
    plan_id: str | None = None  # the booster plan this session belongs to


@dataclass(frozen=True)
class BookSession:
    booking: Booking
    therapist: TherapistState
    client_status: str | None  # from the client directory; None = not registered
    now: datetime
    rooms: VideoRooms | None = None  # how a video session's room and links are made


@dataclass(frozen=True)
class RescheduleSession:
    starts_at: datetime
    therapist: TherapistState
    client_status: str | None
    now: datetime
    modality: str | None = None
    room: str | None = None
    reason: str | None = None
    rooms: VideoRooms | None = None


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


# -- evolve -----------------------------------------------------------------------------------
def _booked(state: SessionState, d: dict) -> SessionState:
    return SessionState(BOOKED, d)


def _rescheduled(state: SessionState, d: dict) -> SessionState:
    moved = {k: d.get(k) for k in ("starts_at", "ends_at", "modality", "room", *VIDEO)}
    return SessionState(BOOKED, {**state.facts, **moved})


def _cancelled(state: SessionState, d: dict) -> SessionState:
    # the room is revoked with the session: no view shows its links again
    facts = {**state.facts, "cancelled_by": d["by"], "late": d["late"]}
    return SessionState(CANCELLED, {**facts, **dict.fromkeys(VIDEO)})


EVOLVERS: dict[str, Callable[[SessionState, dict], SessionState]] = {
    "SessionBooked": _booked,
    "SessionRescheduled": _rescheduled,
    "SessionCancelled": _cancelled,
    "SessionAttended": lambda state, d: replace(state, status=ATTENDED),
    "SessionMissed": lambda state, d: replace(state, status=MISSED),
}


# -- decide -----------------------------------------------------------------------------------
def _book(state: SessionState, command: BookSession) -> list[NewEvent]:
    b = command.booking
    if state.status is not None:
        raise Conflict(f"session {b.session_id} already exists")
    check_client(b.client_id, command.client_status)
    check_bookable(command.therapist, b.modality, b.room, b.starts_at, command.now)
    data = booked_data(b, command.therapist.therapist_id, command.rooms)
    return [NewEvent("SessionBooked", data)]


def _still_booked(state: SessionState, verb: str) -> None:
    """Only a booked session changes; attended, missed and cancelled ones are history."""
    if state.status is None:
        raise NotFound("no such session")
    if state.status != BOOKED:
        raise Conflict(
            f"the session is {state.status}; it cannot be {verb}", code=f"session_{state.status}"
        )


def _reschedule(state: SessionState, command: RescheduleSession) -> list[NewEvent]:
    _still_booked(state, "rescheduled")
    f = state.facts
    check_client(f["client_id"], command.client_status)
    modality = command.modality or f["modality"]
    room = command.room if command.modality or command.room else f.get("room")
    if modality != "face_to_face":
        room = None
    check_bookable(command.therapist, modality, room, command.starts_at, command.now)
    if command.starts_at == f["starts_at"] and modality == f["modality"] and room == f.get("room"):
        raise Conflict("the session is already at that time and place", code="unchanged")
    # a session moved or changed to video gets the room of its new time (and new links)
    video = _video(command.rooms, f["session_id"], f["client_id"], modality, command.starts_at)
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
                **video,
            },
        )
    ]


def _cancel(state: SessionState, command: CancelSession) -> list[NewEvent]:
    _still_booked(state, "cancelled")
    late = state.facts["starts_at"] - command.now < diary.LATE_CANCELLATION
    data = {**_facts(state), "by": command.by, "reason": command.reason, "late": late}
    return [NewEvent("SessionCancelled", data)]


def _held(state: SessionState, now: datetime, verb: str, event_type: str) -> list[NewEvent]:
    _still_booked(state, verb)
    if now < state.facts["starts_at"]:
        raise Conflict("the session has not started yet", code="not_started")
    f = state.facts
    # a course session says which one it was: records completes the course at session 16
    course = {"course_id": f["course_id"], "number": f["number"]} if f.get("number") else {}
    return [NewEvent(event_type, {**_facts(state), "kind": f["kind"], **course})]


DECIDERS: dict[type, Callable[[SessionState, Any], list[NewEvent]]] = {
    BookSession: _book,
    RescheduleSession: _reschedule,
    CancelSession: _cancel,
    AttendSession: lambda s, c: _held(s, c.now, "marked attended", "SessionAttended"),
    MissSession: lambda s, c: _held(s, c.now, "marked missed", "SessionMissed"),
}


class Session:
    """The decider of one session's stream (`session-<id>`)."""

    def initial_state(self) -> SessionState:
        return SessionState()

    def evolve(self, state: SessionState, event) -> SessionState:
        return EVOLVERS[event.type](state, dict(event.data))

    def decide(self, state: SessionState, command) -> list[NewEvent]:
        return DECIDERS[type(command)](state, command)


VIDEO = ("video_room", "video_link")


def _video(
    rooms: VideoRooms | None, session_id: str, client_id: str, modality: str, start: datetime
) -> dict:
    if rooms is None:
        return dict.fromkeys(VIDEO)
    return rooms.facts(
        session_id=session_id,
        client_id=client_id,
        modality=modality,
        starts_at=start,
        ends_at=start + diary.SESSION,
    )


def booked_data(b: Booking, therapist_id: str, rooms: VideoRooms | None = None) -> dict[str, Any]:
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
        **_video(rooms, b.session_id, b.client_id, b.modality, b.starts_at),
        **({"plan_id": b.plan_id} if b.plan_id else {}),
    }


def _facts(state: SessionState) -> dict:
    return {
        k: state.facts[k]
        for k in ("session_id", "client_id", "therapist_id", "starts_at", "ends_at")
    }
