"""Reads of the clinical record: session notes and a homework task (each read audited).
The writes of the same resources (api/care.py) are on these blueprints."""

from __future__ import annotations

from flask_smorest import Blueprint

from shared.audit import record_read
from shared.auth import current_identity, requires
from shared.domain import NotFound

from ..application import application
from ..schemas import problems
from ..schemas.care import NoteOut, NotesOut, TaskOut
from .views import note_view, task_view

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


@blp.route("/<client_id>/notes", methods=["GET"])
@requires(*CLINICAL)
@problems(blp, 401, 403, 404)
@blp.response(200, NotesOut)
def list_notes(client_id):
    """Every note in recorded order; an amended note stays, marked with the note that
    amended it (`amended_by`, `current: false`)."""
    state = application().record(client_id, current_identity(), clinical=True)
    record_read("session_notes", client_id)
    return {"client_id": client_id, "notes": [note_view(n) for n in state.notes.values()]}


@blp.route("/<client_id>/notes/<note_id>", methods=["GET"])
@requires(*CLINICAL)
@problems(blp, 401, 403, 404)
@blp.response(200, NoteOut)
def get_note(client_id, note_id):
    """One note (audited)."""
    state = application().record(client_id, current_identity(), clinical=True)
    if note_id not in state.notes:
        raise NotFound(f"no note {note_id} on this record")
    record_read("session_note", client_id)
    return note_view(state.notes[note_id])


@tasks_blp.route("/<task_id>", methods=["GET"])
@requires(*CLINICAL)
@problems(tasks_blp, 401, 403, 404)
@tasks_blp.response(200, TaskOut)
def get_task(task_id):
    """One task with its reflection and reviews (audited)."""
    app = application()
    client_id = app.client_of_task(task_id)
    state = app.record(client_id, current_identity(), clinical=True)
    record_read("task", client_id)
    return task_view(client_id, state.tasks[task_id])
