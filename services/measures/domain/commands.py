"""The measures service's commands: what staff, the client's link and the service's own loop
ask it to do (imperative names; the deciders answer with past-tense events)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RequestQuestionnaire:
    request_id: str
    client_id: str
    therapist_id: str
    session_id: str
    instruments: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    now: datetime
    course_id: str | None = None
    session_number: int | None = None


@dataclass(frozen=True)
class WithdrawQuestionnaire:
    reason: str


@dataclass(frozen=True)
class ResendQuestionnaire:
    now: datetime


@dataclass(frozen=True)
class CompleteQuestionnaire:
    response_id: str
    client_id: str
    therapist_id: str
    answers: dict  # {instrument code: [answer or None, ...]}
    source: str  # "link" | "staff"
    now: datetime
    session_id: str | None = None
    course_id: str | None = None
    session_number: int | None = None


@dataclass(frozen=True)
class AcknowledgeRisk:
    by: str
    note: str
    now: datetime


@dataclass(frozen=True)
class PublishOutcome:
    data: dict


@dataclass(frozen=True)
class SetInstruments:
    client_id: str
    instruments: tuple[str, ...]
