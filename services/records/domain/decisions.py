"""What the client record decides: one function per command, chosen through one table
{command type: function} (DECIDERS). Each returns the events the command causes or raises
a shared.domain error. Pure: no Flask, no pymongo, no clock (a command carries `now`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from shared.domain import Conflict, Invalid, NotFound
from shared.events import NewEvent

from . import commands as c
from . import retention
from .course import CompleteCourse, decide_completion
from .diary import WriteDiaryEntry, decide_entry
from .rules import nhs_number_problem, normalise_nhs_number, phase_move_problem
from .state import DETAIL_FIELDS, ClientState


def _about(s: ClientState, type_: str, **data: Any) -> list[NewEvent]:
    """The one event a command causes, about this client (every event about a client
    carries its `client_id`: architecture.md)."""
    return [NewEvent(type_, {"client_id": s.client_id, **data})]


def _must_exist(s: ClientState) -> None:
    if not s.registered:
        raise NotFound("no such client")


def _must_be_in_care(s: ClientState, action: str) -> None:
    """After discharge the record is closed to clinical commands; it stays readable."""
    _must_exist(s)
    if s.status in ("discharged", "disposed"):
        raise Conflict(f"the client was {s.status}; {action} is no longer possible", code=s.status)


def _contact_problem(details: Mapping) -> Invalid | None:
    """A reminder channel needs the contact detail it is sent to."""
    needs = {"email": "email", "sms": "phone"}
    for channel in details.get("reminder_channels") or ():
        if not details.get(needs[channel]):
            return Invalid(
                f"the client consented to {channel} reminders but no {needs[channel]} is recorded",
                field=needs[channel],
            )
    return None


def _checked_nhs_number(raw: str | None) -> str | None:
    if raw is None:
        return None
    problem = nhs_number_problem(raw)
    if problem:
        raise Invalid(problem, field="nhs_number")
    return normalise_nhs_number(raw)


def _register(s: ClientState, cmd: c.RegisterClient) -> list[NewEvent]:
    if s.registered:
        raise Conflict("this client is already registered")
    data = {k: getattr(cmd, k) for k in DETAIL_FIELDS}
    data["reminder_channels"] = list(dict.fromkeys(cmd.reminder_channels))
    data["nhs_number"] = _checked_nhs_number(cmd.nhs_number)
    data["gp"] = dict(cmd.gp) if cmd.gp else None
    problem = _contact_problem(data)
    if problem:
        raise problem
    return [NewEvent("ClientRegistered", {"client_id": cmd.client_id, **data})]


def _correct(s: ClientState, cmd: c.CorrectDetails) -> list[NewEvent]:
    _must_exist(s)
    if s.status == "disposed":
        raise Conflict("the record was disposed of; it can no longer be corrected", code="disposed")
    unknown = set(cmd.changes) - set(DETAIL_FIELDS)
    if unknown:
        raise Invalid(f"cannot correct {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    changes = dict(cmd.changes)
    if changes.get("nhs_number") is not None:
        changes["nhs_number"] = _checked_nhs_number(changes["nhs_number"])
    if "reminder_channels" in changes:
        changes["reminder_channels"] = list(dict.fromkeys(changes["reminder_channels"]))
    changed = {k: v for k, v in changes.items() if s.details.get(k) != v}
    if not changed:
        raise Invalid("nothing differs from the record; no correction to make", field="body")
    problem = _contact_problem({**s.details, **changed})
    if problem:
        raise problem
    return _about(s, "ClientDetailsCorrected", reason=cmd.reason, **changed)


def _assess(s: ClientState, cmd: c.RecordAssessment) -> list[NewEvent]:
    _must_be_in_care(s, "recording an assessment")
    return _about(
        s,
        "AssessmentRecorded",
        session_id=cmd.session_id,
        presenting_difficulties=cmd.presenting_difficulties,
        conditions=list(dict.fromkeys(cmd.conditions)),
        goals=list(cmd.goals),
        risk_summary=cmd.risk_summary,
    )


def _formulate(s: ClientState, cmd: c.RecordFormulation) -> list[NewEvent]:
    _must_be_in_care(s, "revising the formulation")
    # IPT works on one focus, at most two (IPT UK; clinical.md).
    if not 1 <= len(set(cmd.problem_areas)) == len(cmd.problem_areas) <= 2:
        raise Invalid("choose one or two different problem areas", field="problem_areas")
    for index, person in enumerate(cmd.inventory):
        if person["closeness"] not in (1, 2, 3):  # the closeness circle's three rings
            raise Invalid(
                "closeness is ring 1 (inner), 2 or 3 (outer)", field=f"inventory.{index}.closeness"
            )
    if cmd.expected_revision is not None and cmd.expected_revision != s.revision:
        raise Conflict(
            f"the formulation is at revision {s.revision}, not "
            f"{cmd.expected_revision}; reload it before revising",
            code="stale",
        )
    return _about(
        s,
        "FormulationRecorded",
        revision=s.revision + 1,
        problem_areas=list(cmd.problem_areas),
        formulation=cmd.formulation,
        inventory=[dict(p) for p in cmd.inventory],
        goals=list(cmd.goals),
    )


def _change_phase(s: ClientState, cmd: c.ChangePhase) -> list[NewEvent]:
    _must_be_in_care(s, "a phase change")
    problem = phase_move_problem(s.phase, cmd.to_phase)
    if problem:
        raise Conflict(problem, field="to_phase", code="phase_order")
    # The initial phase ends with the focus agreed in a formulation (IPT UK).
    if cmd.to_phase == "middle" and s.formulation is None:
        raise Conflict(
            "record the IPT formulation before the middle phase",
            field="to_phase",
            code="no_formulation",
        )
    return _about(
        s,
        "PhaseChanged",
        from_phase=s.phase,
        to_phase=cmd.to_phase,
        reason=cmd.reason,
        by=cmd.by,
    )


def _note(s: ClientState, cmd: c.RecordNote) -> list[NewEvent]:
    _must_be_in_care(s, "adding or amending a note")
    if cmd.note_id in s.notes:
        raise Conflict("a note with this id exists already")
    session_id = cmd.session_id
    if cmd.amends is not None:
        original = s.notes.get(cmd.amends)
        if original is None:
            raise NotFound(f"no note {cmd.amends} on this record")
        if original["amended_by"]:
            raise Conflict(
                f"note {cmd.amends} was already amended by note "
                f"{original['amended_by']}; amend the latest version",
                code="superseded",
            )
        if original["author"] != cmd.author:
            # a clinician corrects only their own entry; others add a note of their own
            raise Conflict("only the author of a note may amend it", code="not_author")
        session_id = session_id or original.get("session_id")
    elif cmd.amendment_reason is not None:
        raise Invalid("an amendment reason belongs to an amendment", field="amendment_reason")
    return _about(
        s,
        "NoteRecorded",
        note_id=cmd.note_id,
        session_id=session_id,
        text=cmd.text,
        author=cmd.author,
        amends=cmd.amends,
        amendment_reason=cmd.amendment_reason,
    )


def _assign(s: ClientState, cmd: c.AssignTask) -> list[NewEvent]:
    _must_be_in_care(s, "assigning a task")
    if cmd.task_id in s.tasks:
        raise Conflict("a task with this id exists already")
    return _about(
        s,
        "TaskAssigned",
        task_id=cmd.task_id,
        description=cmd.description,
        due_at=cmd.due_at,
        session_id=cmd.session_id,
    )


def _task(s: ClientState, task_id: str, action: str) -> Mapping:
    _must_be_in_care(s, action)
    task = s.tasks.get(task_id)
    if task is None:
        raise NotFound(f"no task {task_id} on this record")
    return task


# clocks of staff machines and the server differ a little; more than this is a typing error
CLOCK_SKEW = timedelta(minutes=5)


def _complete(s: ClientState, cmd: c.CompleteTask) -> list[NewEvent]:
    task = _task(s, cmd.task_id, "completing a task")
    if task["status"] == "completed":
        raise Conflict("the task is already completed", code="completed")
    assigned_at = task.get("assigned_at")
    if assigned_at is not None and cmd.completed_at < assigned_at - CLOCK_SKEW:
        raise Invalid(
            "a task cannot be completed before it was set "
            f"({assigned_at.isoformat(timespec='minutes')})",
            field="completed_at",
        )
    if cmd.now is not None and cmd.completed_at > cmd.now + CLOCK_SKEW:
        raise Invalid("a task cannot be completed in the future", field="completed_at")
    return _about(
        s,
        "TaskCompleted",
        task_id=cmd.task_id,
        reflection=cmd.reflection,
        completed_at=cmd.completed_at,
    )


def _review(s: ClientState, cmd: c.ReviewTask) -> list[NewEvent]:
    _task(s, cmd.task_id, "reviewing a task")
    return _about(
        s,
        "TaskReviewed",
        task_id=cmd.task_id,
        review=cmd.review,
        session_id=cmd.session_id,
        by=cmd.by,
    )


def _discharge(s: ClientState, cmd: c.DischargeClient) -> list[NewEvent]:
    _must_be_in_care(s, "discharging again")
    return _about(
        s,
        "ClientDischarged",
        therapist_id=s.details["therapist_id"],
        reason=cmd.reason,
        outcome_summary=cmd.outcome_summary,
        discharged_at=cmd.discharged_at,
        **({} if cmd.cancel_boosters is None else {"cancel_boosters": cmd.cancel_boosters}),
    )


DECIDERS: dict[type, Callable[[ClientState, Any], list[NewEvent]]] = {
    c.RegisterClient: _register,
    c.CorrectDetails: _correct,
    c.RecordAssessment: _assess,
    c.RecordFormulation: _formulate,
    c.ChangePhase: _change_phase,
    c.RecordNote: _note,
    c.AssignTask: _assign,
    c.CompleteTask: _complete,
    c.ReviewTask: _review,
    c.DischargeClient: _discharge,
    CompleteCourse: lambda s, cmd: decide_completion(s, cmd, _must_be_in_care),
    WriteDiaryEntry: lambda s, cmd: decide_entry(s, cmd, _must_be_in_care),
    c.RequestErasure: retention.decide_erasure,
    c.DisposeClient: retention.decide_disposal,
}


def decide(state: ClientState, command) -> list[NewEvent]:
    return DECIDERS[type(command)](state, command)
