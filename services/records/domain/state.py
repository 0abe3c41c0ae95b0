"""The client record's state and how each event changes it: `evolve` through one table
{event type: function} (EVOLVERS). Pure: no Flask, no pymongo."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from . import course as course_rules
from . import diary as diary_rules

DETAIL_FIELDS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "email",
    "phone",
    "preferred_modality",
    "reminder_channels",
    "therapist_id",
    "referral_source",
    "gp",
    "nhs_number",
)
_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class ClientState:
    client_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    status: str | None = None  # None (not registered), "active", "discharged", "disposed"
    phase: str | None = None
    assessment: Mapping[str, Any] | None = None
    formulation: Mapping[str, Any] | None = None
    notes: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: _EMPTY)
    tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: _EMPTY)
    discharge: Mapping[str, Any] | None = None
    course: Mapping[str, Any] | None = None  # the current course's completion (domain.course)
    course_sessions: frozenset = frozenset()  # final sessions that completed a course
    diary: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: _EMPTY)
    registered_at: datetime | None = None
    last_changed_at: datetime | None = None
    version: int = 0

    @property
    def registered(self) -> bool:
        return self.status is not None

    @property
    def revision(self) -> int:
        return self.formulation["revision"] if self.formulation else 0


def _when(event) -> datetime | None:
    """Kernel events carry recorded_at; the bare NewEvents of domain tests do not."""
    return getattr(event, "recorded_at", None) or getattr(event, "occurred_at", None)


def _with(mapping: Mapping, key: str, value: Any) -> Mapping:
    return MappingProxyType({**mapping, key: value})


def _registered(s: ClientState, d: Mapping, at) -> ClientState:
    details = {k: d.get(k) for k in DETAIL_FIELDS}
    return replace(
        s,
        client_id=d["client_id"],
        details=MappingProxyType(details),
        status="active",
        registered_at=at,
    )


def _corrected(s: ClientState, d: Mapping, at) -> ClientState:
    changes = {k: d[k] for k in DETAIL_FIELDS if k in d}
    return replace(s, details=MappingProxyType({**s.details, **changes}))


def _assessed(s: ClientState, d: Mapping, at) -> ClientState:
    return replace(s, assessment=MappingProxyType({**d, "recorded_at": at}))


def _formulated(s: ClientState, d: Mapping, at) -> ClientState:
    return replace(s, formulation=MappingProxyType({**d, "recorded_at": at}))


def _phase_changed(s: ClientState, d: Mapping, at) -> ClientState:
    course = None if course_rules.new_course_begins(s, d) else s.course
    return replace(s, phase=d["to_phase"], course=course)


def _note_recorded(s: ClientState, d: Mapping, at) -> ClientState:
    note = {**d, "recorded_at": at, "amended_by": None}
    notes = _with(s.notes, d["note_id"], MappingProxyType(note))
    if d.get("amends") in notes:  # the original stays; it only learns it was amended
        notes = _with(
            notes, d["amends"], MappingProxyType({**notes[d["amends"]], "amended_by": d["note_id"]})
        )
    return replace(s, notes=notes)


def _task_assigned(s: ClientState, d: Mapping, at) -> ClientState:
    task = {
        **d,
        "status": "open",
        "assigned_at": at,
        "reflection": None,
        "completed_at": None,
        "reviews": (),
    }
    return replace(s, tasks=_with(s.tasks, d["task_id"], MappingProxyType(task)))


def _task_completed(s: ClientState, d: Mapping, at) -> ClientState:
    task = {
        **s.tasks[d["task_id"]],
        "status": "completed",
        "reflection": d.get("reflection"),
        "completed_at": d["completed_at"],
    }
    return replace(s, tasks=_with(s.tasks, d["task_id"], MappingProxyType(task)))


def _task_reviewed(s: ClientState, d: Mapping, at) -> ClientState:
    old = s.tasks[d["task_id"]]
    review = MappingProxyType(
        {"review": d["review"], "by": d["by"], "session_id": d.get("session_id"), "reviewed_at": at}
    )
    task = {**old, "reviews": (*old["reviews"], review)}
    return replace(s, tasks=_with(s.tasks, d["task_id"], MappingProxyType(task)))


def _discharged(s: ClientState, d: Mapping, at) -> ClientState:
    return replace(s, status="discharged", discharge=MappingProxyType(dict(d)))


def _erasure_refused(s: ClientState, d: Mapping, at) -> ClientState:
    return s  # recorded in the history; the record itself does not change


def _disposed(s: ClientState, d: Mapping, at) -> ClientState:
    return replace(s, status="disposed")


EVOLVERS: dict[str, Callable[[ClientState, Mapping, Any], ClientState]] = {
    "ClientRegistered": _registered,
    "ClientDetailsCorrected": _corrected,
    "AssessmentRecorded": _assessed,
    "FormulationRecorded": _formulated,
    "PhaseChanged": _phase_changed,
    "NoteRecorded": _note_recorded,
    "TaskAssigned": _task_assigned,
    "TaskCompleted": _task_completed,
    "TaskReviewed": _task_reviewed,
    "ClientDischarged": _discharged,
    "CourseCompleted": course_rules.course_completed,
    "CourseOutcomeRecorded": course_rules.outcome_recorded,
    "DiaryEntryWritten": diary_rules.entry_written,
    "ErasureRefused": _erasure_refused,
    "ClientDisposed": _disposed,
}
RECORD_EVENT_TYPES = tuple(EVOLVERS)


def evolve(state: ClientState, event) -> ClientState:
    at = _when(event)
    new = EVOLVERS[event.type](state, event.data, at)
    return replace(new, version=state.version + 1, last_changed_at=at)
