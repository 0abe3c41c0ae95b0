"""The end of the course of treatment, from the client record: the therapist (or the clinical
lead) records it with its outcome, and whether the client goes on into maintenance with
booster sessions (clinical.md: completing the course is not leaving the practice; John went
on to boosters every two months). Records decides access; a refused form is shown again
with the reason beside the field (pages.common)."""

from __future__ import annotations

from flask import redirect, request, url_for

from ..backend import backend
from ..security import signed_in
from . import blueprint
from .common import form_flash_ok

OUTCOMES = (
    ("recovered", "Recovered"),
    ("improved", "Improved"),
    ("no_change", "No change"),
    ("deteriorated", "Deteriorated"),
)


@blueprint.app_context_processor
def _course_outcomes():
    return {"course_outcomes": OUTCOMES}


@blueprint.post("/clients/<client_id>/course-completed")
@signed_in("therapist", "clinical_lead")
def course_completed(client_id):
    body = {
        "outcome": request.form.get("outcome", ""),
        "outcome_summary": request.form.get("outcome_summary", "").strip() or None,
        "maintenance": request.form.get("maintenance") == "yes",
    }
    done = backend().post("records", f"/clients/{client_id}/course-completed", body)
    then = (
        " The client continues in maintenance: book their boosters."
        if done.get("phase") == "maintenance"
        else ""
    )
    form_flash_ok(f"Course completed.{then}")
    return redirect(url_for("pages.client", client_id=client_id) + "#course")
