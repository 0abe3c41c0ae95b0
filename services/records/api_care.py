"""The clinical record: assessment, formulation, phases, session notes, homework tasks and
discharge. Only the client's therapist and the clinical lead reach these routes."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from shared.audit import record_read
from shared.auth import current_identity, requires
from shared.domain import NotFound
from shared.events import new_id, utcnow

from . import commands as c
from .access import authorised, records, run, run_on_session
from .schemas import AssessmentOut, DischargeOut, FormulationOut, NoteOut, TaskOut, problems
from .schemas_care import (
    AmendIn,
    AssessmentIn,
    DischargeIn,
    FormulationIn,
    NoteIn,
    NotesOut,
    PhaseIn,
    PhaseOut,
    TaskCompleteIn,
    TaskIn,
    TaskReviewIn,
)
from .views import note_view, plain, task_view

blp = Blueprint(
    "care",
    __name__,
    url_prefix="/clients",
    description="Assessment, IPT formulation, phases, notes, tasks, discharge",
)
tasks_blp = Blueprint(
    "tasks", __name__, url_prefix="/tasks", description="Homework tasks between sessions"
)
CLINICAL = ("therapist", "clinical_lead")


@blp.route("/<client_id>/assessment")
class Assessment(MethodView):
    @requires(*CLINICAL)
    @problems(blp, 401, 403, 404, 409)
    @blp.arguments(AssessmentIn)
    @blp.response(201, AssessmentOut)
    def post(self, body, client_id):
        """Record the first-session assessment (`AssessmentRecorded`); a `session_id`, when
        given, must name a session of this client (422 otherwise)."""
        state = run_on_session(
            client_id, body.get("session_id"), c.RecordAssessment(client_id=client_id, **body)
        )
        return plain(state.assessment), 201, {"Location": f"/clients/{client_id}"}


@blp.route("/<client_id>/formulation")
class Formulation(MethodView):
    @requires(*CLINICAL)
    @problems(blp, 401, 403, 404, 409)
    @blp.arguments(FormulationIn)
    @blp.response(200, FormulationOut)
    def put(self, body, client_id):
        """Record or revise the IPT formulation (`FormulationRecorded`, revision n + 1)."""
        state = run(client_id, c.RecordFormulation(client_id=client_id, **body))
        return plain(state.formulation)


@blp.route("/<client_id>/phase")
class Phase(MethodView):
    @requires(*CLINICAL)
    @problems(blp, 401, 403, 404, 409)
    @blp.arguments(PhaseIn)
    @blp.response(200, PhaseOut)
    def post(self, body, client_id):
        """Move the client to another phase (`PhaseChanged`). Allowed moves: none -> initial
        -> middle (needs a formulation) -> ending -> maintenance; back one step from middle
        or ending; from maintenance back to initial (a new acute course). 409 otherwise and
        after discharge."""
        before = authorised(client_id, clinical=True)
        state = run(
            client_id,
            c.ChangePhase(client_id, body["to_phase"], body["reason"], by=current_identity().sub),
        )
        return {
            "client_id": client_id,
            "from_phase": before.phase,
            "phase": state.phase,
            "reason": body["reason"],
            "by": current_identity().sub,
            **records().attendance(client_id),
        }


@blp.route("/<client_id>/notes")
class Notes(MethodView):
    @requires(*CLINICAL)
    @problems(blp, 401, 403, 404)
    @blp.response(200, NotesOut)
    def get(self, client_id):
        """Every note in recorded order; an amended note stays, marked with the note that
        amended it (`amended_by`, `current: false`)."""
        state = authorised(client_id, clinical=True)
        record_read("session_notes", client_id)
        return {"client_id": client_id, "notes": [note_view(n) for n in state.notes.values()]}

    @requires(*CLINICAL)
    @problems(blp, 401, 403, 404, 409)
    @blp.arguments(NoteIn)
    @blp.response(201, NoteOut)
    def post(self, body, client_id):
        """Add a session note (`NoteRecorded`). `session_id` must name a session scheduling
        booked for this client (422 otherwise; a booking of the last few seconds is waited
        for, up to 3 s)."""
        note_id = new_id()
        state = run_on_session(
            client_id,
            body["session_id"],
            c.RecordNote(
                client_id,
                note_id,
                body["text"],
                author=current_identity().sub,
                session_id=body["session_id"],
            ),
        )
        return (
            note_view(state.notes[note_id]),
            201,
            {"Location": f"/clients/{client_id}/notes/{note_id}"},
        )


@blp.route("/<client_id>/notes/<note_id>")
class Note(MethodView):
    @requires(*CLINICAL)
    @problems(blp, 401, 403, 404)
    @blp.response(200, NoteOut)
    def get(self, client_id, note_id):
        """One note (audited)."""
        state = authorised(client_id, clinical=True)
        if note_id not in state.notes:
            raise NotFound(f"no note {note_id} on this record")
        record_read("session_note", client_id)
        return note_view(state.notes[note_id])


@blp.route("/<client_id>/notes/<note_id>/amend")
class Amend(MethodView):
    @requires(*CLINICAL)
    @problems(blp, 401, 403, 404, 409)
    @blp.arguments(AmendIn)
    @blp.response(201, NoteOut)
    def post(self, body, client_id, note_id):
        """Amend a note: a new note that `amends` the old one; the original text stays in the
        record and the history, marked as amended, with when and by whom."""
        new_note = new_id()
        state = run(
            client_id,
            c.RecordNote(
                client_id,
                new_note,
                body["text"],
                author=current_identity().sub,
                amends=note_id,
                amendment_reason=body["reason"],
            ),
        )
        return (
            note_view(state.notes[new_note]),
            201,
            {"Location": f"/clients/{client_id}/notes/{new_note}"},
        )


@blp.route("/<client_id>/tasks")
class Tasks(MethodView):
    @requires(*CLINICAL)
    @problems(blp, 401, 403, 404, 409)
    @blp.arguments(TaskIn)
    @blp.response(201, TaskOut)
    def post(self, body, client_id):
        """Set a homework task (`TaskAssigned`); a `session_id`, when given, must name a
        session of this client (422 otherwise)."""
        task_id = new_id()
        state = run_on_session(
            client_id,
            body.get("session_id"),
            c.AssignTask(client_id=client_id, task_id=task_id, **body),
        )
        return (task_view(client_id, state.tasks[task_id]), 201, {"Location": f"/tasks/{task_id}"})


@blp.route("/<client_id>/discharge")
class Discharge(MethodView):
    @requires(*CLINICAL)
    @problems(blp, 401, 403, 404, 409)
    @blp.arguments(DischargeIn)
    @blp.response(200, DischargeOut)
    def post(self, body, client_id):
        """Discharge with reason and outcome summary (`ClientDischarged`); afterwards
        clinical commands are refused (409) and the record stays readable."""
        state = run(
            client_id,
            c.DischargeClient(client_id, body["reason"], body["outcome_summary"], utcnow()),
        )
        return plain(state.discharge)


def _task_state(task_id: str):
    client_id = records().client_of_task(task_id)
    return client_id, authorised(client_id, clinical=True)


@tasks_blp.route("/<task_id>")
class Task(MethodView):
    @requires(*CLINICAL)
    @problems(tasks_blp, 401, 403, 404)
    @tasks_blp.response(200, TaskOut)
    def get(self, task_id):
        """One task with its reflection and reviews (audited)."""
        client_id, state = _task_state(task_id)
        record_read("task", client_id)
        return task_view(client_id, state.tasks[task_id])


@tasks_blp.route("/<task_id>/complete")
class CompleteTask(MethodView):
    @requires(*CLINICAL)
    @problems(tasks_blp, 401, 403, 404, 409)
    @tasks_blp.arguments(TaskCompleteIn)
    @tasks_blp.response(200, TaskOut)
    def post(self, body, task_id):
        """Mark the task done, with the client's reflection (`TaskCompleted`)."""
        client_id, _ = _task_state(task_id)
        now = utcnow()
        state = run(
            client_id,
            c.CompleteTask(
                client_id, task_id, body["completed_at"] or now, body["reflection"], now=now
            ),
        )
        return task_view(client_id, state.tasks[task_id])


@tasks_blp.route("/<task_id>/review")
class ReviewTask(MethodView):
    @requires(*CLINICAL)
    @problems(tasks_blp, 401, 403, 404, 409)
    @tasks_blp.arguments(TaskReviewIn)
    @tasks_blp.response(200, TaskOut)
    def post(self, body, task_id):
        """Record that the task was gone over in session (`TaskReviewed`), done or not; a
        `session_id`, when given, must name a session of this client (422 otherwise)."""
        client_id, _ = _task_state(task_id)
        state = run_on_session(
            client_id,
            body["session_id"],
            c.ReviewTask(
                client_id,
                task_id,
                body["review"],
                by=current_identity().sub,
                session_id=body["session_id"],
            ),
        )
        return task_view(client_id, state.tasks[task_id])
