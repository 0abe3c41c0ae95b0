"""Commands to the client record: what a user asks for, named after the intent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class RegisterClient:
    client_id: str
    given_name: str
    family_name: str
    date_of_birth: date
    preferred_modality: str
    reminder_channels: tuple[str, ...]
    therapist_id: str
    referral_source: str
    email: str | None = None
    phone: str | None = None
    gp: Mapping[str, str] | None = None
    nhs_number: str | None = None


@dataclass(frozen=True)
class CorrectDetails:
    """`changes` holds only the fields the user sent (None clears an optional field)."""

    client_id: str
    reason: str
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordAssessment:
    client_id: str
    presenting_difficulties: str
    conditions: tuple[str, ...]
    goals: tuple[str, ...]
    risk_summary: str
    session_id: str | None = None


@dataclass(frozen=True)
class RecordFormulation:
    client_id: str
    problem_areas: tuple[str, ...]
    formulation: str
    inventory: tuple[Mapping[str, Any], ...]
    goals: tuple[str, ...]
    expected_revision: int | None = None  # the revision the user edited, if they say


@dataclass(frozen=True)
class ChangePhase:
    client_id: str
    to_phase: str
    reason: str
    by: str


@dataclass(frozen=True)
class RecordNote:
    client_id: str
    note_id: str
    text: str
    author: str
    session_id: str | None = None
    amends: str | None = None
    amendment_reason: str | None = None


@dataclass(frozen=True)
class AssignTask:
    client_id: str
    task_id: str
    description: str
    due_at: datetime | None = None
    session_id: str | None = None


@dataclass(frozen=True)
class CompleteTask:
    client_id: str
    task_id: str
    completed_at: datetime
    reflection: str | None = None
    now: datetime | None = None  # the handler's clock: a completion cannot lie in the future


@dataclass(frozen=True)
class ReviewTask:
    client_id: str
    task_id: str
    review: str
    by: str
    session_id: str | None = None


@dataclass(frozen=True)
class DischargeClient:
    client_id: str
    reason: str
    outcome_summary: str
    discharged_at: datetime
    cancel_boosters: bool | None = None  # staff's explicit answer when boosters are booked


@dataclass(frozen=True)
class RequestErasure:
    """A request to erase the record (domain.retention decides: refused or disposal)."""

    client_id: str
    requested_by: str
    request: str
    now: datetime


@dataclass(frozen=True)
class DisposeClient:
    client_id: str
    now: datetime
