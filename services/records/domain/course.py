"""The end of a course of treatment, apart from leaving the practice (clinical.md: "The end
of the course and leaving the practice are different events: the 16-session course is
*completed* (its outcome recorded) and the client may continue in maintenance with boosters
(as John did); *discharge* is when care ends").

- `CompleteCourse` from the therapist (`POST /clients/{id}/course-completed`) records
  `CourseCompleted` with its outcome; with `maintenance` the client also moves into the
  maintenance phase (IPT-M, booster sessions) in the same append.
- When session 16 is attended, records' worker sends `CompleteCourse(ended="final_session")`
  with no outcome: the course is completed at once, and the therapist's `CompleteCourse`
  afterwards adds the outcome (`CourseOutcomeRecorded`).
- A new acute course (maintenance -> initial, rules.ALLOWED_MOVES) opens the course again.
Pure: no Flask, no pymongo, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType

from shared.domain import Conflict, Invalid
from shared.events import NewEvent

from .rules import phase_move_problem

COURSE_LENGTH = 16  # the practice's course: 16 sessions (clinical.md)


@dataclass(frozen=True)
class CompleteCourse:
    client_id: str
    ended: str  # "final_session" or "therapist" (shared.contracts.records.COURSE_ENDINGS)
    completed_at: datetime
    by: str
    sessions_attended: int
    outcome: str | None = None
    outcome_summary: str | None = None
    maintenance: bool = False
    session_id: str | None = None  # the final session, when its attendance ended the course


def decide_completion(s, cmd: CompleteCourse, must_be_in_care) -> list[NewEvent]:
    must_be_in_care(s, "completing the course")
    if cmd.ended == "therapist" and not cmd.outcome:
        raise Invalid("say how the course ended", field="outcome")
    done = s.course
    if cmd.session_id and cmd.session_id in s.course_sessions:
        raise Conflict("this session already completed a course", code="course_completed")
    if done is not None:
        if cmd.ended != "therapist" or done.get("outcome"):
            raise Conflict(
                f"the course was completed on {done['completed_at']:%d %B %Y}",
                code="course_completed",
            )
        events = [
            NewEvent(
                "CourseOutcomeRecorded",
                {
                    "client_id": s.client_id,
                    "outcome": cmd.outcome,
                    "outcome_summary": cmd.outcome_summary,
                    "by": cmd.by,
                },
            )
        ]
    else:
        events = [
            NewEvent(
                "CourseCompleted",
                {
                    "client_id": s.client_id,
                    "therapist_id": s.details["therapist_id"],
                    "ended": cmd.ended,
                    "session_id": cmd.session_id,
                    "outcome": cmd.outcome,
                    "outcome_summary": cmd.outcome_summary,
                    "sessions_attended": cmd.sessions_attended,
                    "completed_at": cmd.completed_at,
                    "by": cmd.by,
                },
            )
        ]
    if cmd.maintenance and s.phase != "maintenance":
        problem = phase_move_problem(s.phase, "maintenance")
        if problem:
            raise Conflict(
                f"{problem}: move to the ending phase first",
                field="maintenance",
                code="phase_order",
            )
        events.append(
            NewEvent(
                "PhaseChanged",
                {
                    "client_id": s.client_id,
                    "from_phase": s.phase,
                    "to_phase": "maintenance",
                    "reason": "course completed; maintenance with booster sessions",
                    "by": cmd.by,
                },
            )
        )
    return events


# -- evolve ----------------------------------------------------------------------------------
def course_completed(s, d: Mapping, at):
    course = MappingProxyType({**d, "recorded_at": at})
    sessions = s.course_sessions | ({d["session_id"]} if d.get("session_id") else set())
    return replace(s, course=course, course_sessions=frozenset(sessions))


def outcome_recorded(s, d: Mapping, at):
    changes = {k: d.get(k) for k in ("outcome", "outcome_summary")}
    return replace(s, course=MappingProxyType({**(s.course or {}), **changes}))


def new_course_begins(s, d: Mapping) -> bool:
    """maintenance -> initial: a recurrence treated as a new acute course (rules.py)."""
    return d.get("from_phase") == "maintenance" and d["to_phase"] == "initial"
