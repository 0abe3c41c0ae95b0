"""The homework diary's writes: a link issued for the client (by their therapist or the lead
on the record, or by notifications for the task reminder), and what the client does at it
(the portal's public page, with its service token and the link in the body): write a diary
entry or a reflection, mark a task done. The link is the client's credential: who may act is
decided by it, then the record decides as for any command (closed record: 409)."""

from __future__ import annotations

from shared.auth import current_identity, requires
from shared.events import new_id, utcnow
from shared.web import request_metadata

from ..application import application
from ..domain import commands as c
from ..domain.diary import WriteDiaryEntry
from ..queries.care import blp
from ..queries.homework import entry_view, homework_blp, homework_links, task_brief
from ..schemas import problems
from ..schemas.homework import DoneIn, EntryIn, EntryOut, LinkOut, OpenTaskOut


@blp.route("/<client_id>/homework-links", methods=["POST"])
@requires("therapist", "clinical_lead", "service")
@problems(blp, 401, 403, 404, 409)
@blp.response(201, LinkOut)
def issue_link(client_id):
    """A fresh link to the client's homework page, valid 14 days (the token is shown once).
    The client's therapist, the clinical lead, or a service (notifications' task reminder)."""
    app, who = application(), current_identity()
    state = app.link_holder(client_id, who)
    token, expires_at = homework_links().issue(state.client_id, utcnow())
    out = {"token": token, "path": f"/homework/{token}", "expires_at": expires_at}
    return out, 201, {"Location": f"/clients/{client_id}/diary-entries"}


@homework_blp.route("/entries", methods=["POST"])
@requires("service")
@problems(homework_blp, 401, 403, 404, 409)
@homework_blp.arguments(EntryIn)
@homework_blp.response(201, EntryOut)
def write_entry(body):
    """The client writes a diary entry (or a reflection on `task_id`): `DiaryEntryWritten`,
    sealed under the client's key."""
    now = utcnow()
    client_id, _ = homework_links().client_of(body["token"], now)
    entry_id = new_id()
    command = WriteDiaryEntry(client_id, entry_id, body["text"], now, task_id=body["task_id"])
    state = application().by_client(command, request_metadata())
    return (
        entry_view(state.diary[entry_id]),
        201,
        {"Location": f"/clients/{client_id}/diary-entries"},
    )


@homework_blp.route("/tasks/<task_id>/done", methods=["POST"])
@requires("service")
@problems(homework_blp, 401, 403, 404, 409)
@homework_blp.arguments(DoneIn)
@homework_blp.response(200, OpenTaskOut)
def mark_done(body, task_id):
    """The client marks a task done, with their reflection (`TaskCompleted`)."""
    now = utcnow()
    client_id, _ = homework_links().client_of(body["token"], now)
    command = c.CompleteTask(client_id, task_id, now, body["reflection"], now=now)
    state = application().by_client(command, request_metadata())
    return task_brief(state.tasks[task_id])
