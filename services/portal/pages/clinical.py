"""Clinical writes from the client record: notes (add, amend), homework tasks, the phase and
discharge. Only therapists (their own clients) and the clinical lead; records decides access.
A refused write shows its form again with the reason beside the field (pages.common)."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ..backend import backend
from ..security import signed_in
from . import blueprint
from .common import form_flash_ok, local_input_to_utc

CLINICAL = ("therapist", "clinical_lead")


def _to_record(client_id, anchor=""):
    return redirect(url_for("pages.client", client_id=client_id) + anchor)


@blueprint.post("/clients/<client_id>/notes")
@signed_in(*CLINICAL)
def note_add(client_id):
    text = request.form.get("text", "").strip()
    amends = request.form.get("amends")
    if amends:
        backend().post(
            "records",
            f"/clients/{client_id}/notes/{amends}/amend",
            {"text": text, "reason": request.form.get("amendment_reason", "").strip()},
        )
        form_flash_ok("Note amended; the original is kept in the record.")
    else:
        backend().post(
            "records",
            f"/clients/{client_id}/notes",
            {"text": text, "session_id": request.form.get("session_id", "")},
        )
        form_flash_ok("Note added.")
    return _to_record(client_id, "#notes")


@blueprint.post("/clients/<client_id>/tasks")
@signed_in(*CLINICAL)
def task_add(client_id):
    # due by a time of day on its date, 18:00 unless the therapist said otherwise (before
    # Thursday's session at 10:00, say): its reminder goes 24 h before (notifications)
    due = request.form.get("due_at")
    by = (request.form.get("due_time") or "").strip() or "18:00"
    body = {
        "description": request.form.get("description", "").strip(),
        "due_at": local_input_to_utc(f"{due}T{by}") if due else None,
    }
    backend().post("records", f"/clients/{client_id}/tasks", body)
    form_flash_ok("Task set.")
    return _to_record(client_id, "#tasks")


@blueprint.post("/clients/<client_id>/tasks/<task_id>/complete")
@signed_in(*CLINICAL)
def task_complete(client_id, task_id):
    body = {"reflection": request.form.get("reflection", "").strip() or None}
    backend().post("records", f"/tasks/{task_id}/complete", body)
    form_flash_ok("Task marked complete.")
    return _to_record(client_id, "#tasks")


@blueprint.post("/clients/<client_id>/phase")
@signed_in(*CLINICAL)
def phase_change(client_id):
    body = {
        "to_phase": request.form.get("to_phase", ""),
        "reason": request.form.get("reason", "").strip(),
    }
    moved = backend().post("records", f"/clients/{client_id}/phase", body)
    form_flash_ok(f"Phase changed to {(moved.get('phase') or body['to_phase']).capitalize()}.")
    return _to_record(client_id, "#phase")


@blueprint.route("/clients/<client_id>/discharge", methods=["GET", "POST"])
@signed_in(*CLINICAL)
def discharge(client_id):
    """Discharge: care ends (clinical.md: the client's to be told). Records cancels nothing
    itself; scheduling cancels the future sessions when it hears of it."""
    if request.method == "POST":
        backend().post(
            "records",
            f"/clients/{client_id}/discharge",
            {
                "reason": request.form.get("reason", "").strip(),
                "outcome_summary": request.form.get("outcome_summary", "").strip(),
                # boosters are the client's choice: cancelled only when staff tick this
                "cancel_boosters": request.form.get("cancel_boosters") == "yes",
            },
        )
        form_flash_ok("Client discharged. Their future sessions are being cancelled.")
        return _to_record(client_id)
    record = backend().get("records", f"/clients/{client_id}")
    return render_template("discharge.html", c=record, client_id=client_id)


from . import formulation  # noqa: E402,F401  (the assessment and formulation pages)
