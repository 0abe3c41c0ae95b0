"""The therapist decider: who is bookable, for what, where and when. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.domain import Conflict, Invalid, NotFound
from shared.events import NewEvent

from . import diary
from .diary import Availability


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


# -- commands ---------------------------------------------------------------------------------
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


# -- evolve -----------------------------------------------------------------------------------
def _registered(state: TherapistState, d: Mapping) -> TherapistState:
    return replace(
        state,
        therapist_id=d["therapist_id"],
        name=d["name"],
        modalities=tuple(d["modalities"]),
        rooms=tuple(d["rooms"]),
    )


def _availability_set(state: TherapistState, d: Mapping) -> TherapistState:
    return replace(state, availability=Availability.from_event(d))


EVOLVERS: dict[str, Callable[[TherapistState, Mapping], TherapistState]] = {
    "TherapistRegistered": _registered,
    "AvailabilitySet": _availability_set,
}


# -- decide -----------------------------------------------------------------------------------
def _register(state: TherapistState, command: RegisterTherapist) -> list[NewEvent]:
    if state.exists:
        raise Conflict(f"therapist {command.therapist_id} is already registered")
    if "face_to_face" in command.modalities and not command.rooms:
        raise Invalid("a therapist offering face-to-face needs at least one room", field="rooms")
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


def _set_availability(state: TherapistState, command: SetAvailability) -> list[NewEvent]:
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


def _check_hours(weekly_hours: list[dict], exceptions: list[dict]) -> None:
    by_day: dict[int, list] = {}
    for i, h in enumerate(weekly_hours):
        try:
            start, end = diary.parse_hhmm(h["start"]), diary.parse_hhmm(h["end"])
        except ValueError as err:
            raise Invalid(str(err), field=f"weekly_hours.{i}") from None
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


DECIDERS: dict[type, Callable[[TherapistState, Any], list[NewEvent]]] = {
    RegisterTherapist: _register,
    SetAvailability: _set_availability,
}


class Therapist:
    """The decider of a therapist's stream (`therapist-<id>`)."""

    def initial_state(self) -> TherapistState:
        return TherapistState()

    def evolve(self, state: TherapistState, event) -> TherapistState:
        return EVOLVERS[event.type](state, event.data)

    def decide(self, state: TherapistState, command) -> list[NewEvent]:
        return DECIDERS[type(command)](state, command)
