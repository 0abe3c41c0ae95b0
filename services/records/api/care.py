"""The clinical record's writes: assessment, formulation, phases, session notes, homework
tasks and discharge. Only the client's therapist and the clinical lead reach these routes. They
are on the `care` and `tasks` blueprints of queries/care.py (the reads: notes, a task)."""

from __future__ import annotations

from shared.auth import current_identity, requires
from shared.events import new_id, utcnow
from shared.web import request_metadata

from ..application import application
from ..domain import commands as c
from ..queries.care import CLINICAL, blp, tasks_blp
from ..queries.views import note_view, plain, task_view
from ..schemas import problems
from ..schemas.care import (
    AmendIn,
    AssessmentIn,
    AssessmentOut,
    DischargeIn,
    DischargeOut,
    FormulationIn,
    FormulationOut,
    NoteIn,
    NoteOut,
    PhaseIn,
    PhaseOut,
    TaskCompleteIn,
    TaskIn,
    TaskOut,
    TaskReviewIn,
)


@blp.route("/<client_id>/assessment", methods=["POST"])
@requires(*CLINICAL)
@problems(blp, 401, 403, 404, 409)
@blp.arguments(AssessmentIn)
@blp.response(201, AssessmentOut)
def record_assessment(body, client_id):
    """Record the first-session assessment (`AssessmentRecorded`); a `session_id`, when
    given, must name a session of this client (422 otherwise)."""
    command = c.RecordAssessment(client_id=client_id, **body)
    state = application().assess(command, current_identity(), request_metadata())
    return plain(state.assessment), 201, {"Location": f"/clients/{client_id}"}


@blp.route("/<client_id>/formulation", methods=["PUT"])
@requires(*CLINICAL)
@problems(blp, 401, 403, 404, 409)
@blp.arguments(FormulationIn)
@blp.response(200, FormulationOut)
def record_formulation(body, client_id):
    """Record or revise the IPT formulation (`FormulationRecorded`, revision n + 1)."""
    command = c.RecordFormulation(client_id=client_id, **body)
    state = application().formulate(command, current_identity(), request_metadata())
    return plain(state.formulation)


@blp.route("/<client_id>/phase", methods=["POST"])
@requires(*CLINICAL)
@problems(blp, 401, 403, 404, 409)
@blp.arguments(PhaseIn)
@blp.response(200, PhaseOut)
def change_phase(body, client_id):
    """Move the client to another phase (`PhaseChanged`). Allowed moves: none -> initial
    -> middle (needs a formulation) -> ending -> maintenance; back one step from middle
    or ending; from maintenance back to initial (a new acute course). 409 otherwise and
    after discharge."""
    app, who = application(), current_identity()
    command = c.ChangePhase(client_id, body["to_phase"], body["reason"], by=who.sub)
    outcome = app.change_phase(command, who, request_metadata())
    return {
        "client_id": client_id,
        "from_phase": outcome.events[0].data["from_phase"],
        "phase": outcome.state.phase,
        "reason": body["reason"],
        "by": who.sub,
        **app.attendance(client_id),
    }


def _note_created(command: c.RecordNote, who):
    """Record the note (a new one or an amendment) and answer 201 with it."""
    state = application().record_note(command, who, request_metadata())
    location = f"/clients/{command.client_id}/notes/{command.note_id}"
    return note_view(state.notes[command.note_id]), 201, {"Location": location}


@blp.route("/<client_id>/notes", methods=["POST"])
@requires(*CLINICAL)
@problems(blp, 401, 403, 404, 409)
@blp.arguments(NoteIn)
@blp.response(201, NoteOut)
def record_note(body, client_id):
    """Add a session note (`NoteRecorded`). `session_id` must name a session scheduling
    booked for this client (422 otherwise; a booking of the last few seconds is waited
    for, up to 3 s)."""
    who, note_id = current_identity(), new_id()
    command = c.RecordNote(
        client_id, note_id, body["text"], author=who.sub, session_id=body["session_id"]
    )
    return _note_created(command, who)


@blp.route("/<client_id>/notes/<note_id>/amend", methods=["POST"])
@requires(*CLINICAL)
@problems(blp, 401, 403, 404, 409)
@blp.arguments(AmendIn)
@blp.response(201, NoteOut)
def amend_note(body, client_id, note_id):
    """Amend a note: a new note that `amends` the old one; the original text stays in the
    record and the history, marked as amended, with when and by whom."""
    who, new_note = current_identity(), new_id()
    command = c.RecordNote(
        client_id,
        new_note,
        body["text"],
        author=who.sub,
        amends=note_id,
        amendment_reason=body["reason"],
    )
    return _note_created(command, who)


@blp.route("/<client_id>/tasks", methods=["POST"])
@requires(*CLINICAL)
@problems(blp, 401, 403, 404, 409)
@blp.arguments(TaskIn)
@blp.response(201, TaskOut)
def assign_task(body, client_id):
    """Set a homework task (`TaskAssigned`); a `session_id`, when given, must name a
    session of this client (422 otherwise)."""
    task_id = new_id()
    command = c.AssignTask(client_id=client_id, task_id=task_id, **body)
    state = application().assign_task(command, current_identity(), request_metadata())
    return task_view(client_id, state.tasks[task_id]), 201, {"Location": f"/tasks/{task_id}"}


@blp.route("/<client_id>/discharge", methods=["POST"])
@requires(*CLINICAL)
@problems(blp, 401, 403, 404, 409)
@blp.arguments(DischargeIn)
@blp.response(200, DischargeOut)
def discharge(body, client_id):
    """Discharge with reason and outcome summary (`ClientDischarged`); afterwards
    clinical commands are refused (409) and the record stays readable."""
    command = c.DischargeClient(
        client_id,
        body["reason"],
        body["outcome_summary"],
        utcnow(),
        cancel_boosters=body.get("cancel_boosters"),
    )
    state = application().discharge(command, current_identity(), request_metadata())
    return plain(state.discharge)


@tasks_blp.route("/<task_id>/complete", methods=["POST"])
@requires(*CLINICAL)
@problems(tasks_blp, 401, 403, 404, 409)
@tasks_blp.arguments(TaskCompleteIn)
@tasks_blp.response(200, TaskOut)
def complete_task(body, task_id):
    """Mark the task done, with the client's reflection (`TaskCompleted`)."""
    app, now = application(), utcnow()
    client_id = app.client_of_task(task_id)
    command = c.CompleteTask(
        client_id, task_id, body["completed_at"] or now, body["reflection"], now=now
    )
    state = app.complete_task(command, current_identity(), request_metadata())
    return task_view(client_id, state.tasks[task_id])


@tasks_blp.route("/<task_id>/review", methods=["POST"])
@requires(*CLINICAL)
@problems(tasks_blp, 401, 403, 404, 409)
@tasks_blp.arguments(TaskReviewIn)
@tasks_blp.response(200, TaskOut)
def review_task(body, task_id):
    """Record that the task was gone over in session (`TaskReviewed`), done or not; a
    `session_id`, when given, must name a session of this client (422 otherwise)."""
    app, who = application(), current_identity()
    client_id = app.client_of_task(task_id)
    command = c.ReviewTask(
        client_id, task_id, body["review"], by=who.sub, session_id=body["session_id"]
    )
    state = app.review_task(command, who, request_metadata())
    return task_view(client_id, state.tasks[task_id])
