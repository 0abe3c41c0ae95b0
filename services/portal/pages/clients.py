"""Clients: the list (search, therapist, phase), registering a client, and the record.
Reception (admin) sees details and sessions only; the clinical parts are neither fetched
nor linked for them (the services refuse them anyway)."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ..backend import backend
from ..security import current_user, signed_in
from .common import form_flash_ok, items
from .diary import therapists
from . import blueprint

STAFF = ("admin", "therapist", "clinical_lead")
CLINICAL = ("therapist", "clinical_lead")


def sees_clinical() -> bool:
    return current_user().role in CLINICAL


@blueprint.get("/clients")
@signed_in(*STAFF)
def clients():
    user = current_user()
    q = request.args.get("q", "").strip()
    therapist = user.therapist_id if user.role == "therapist" else request.args.get("therapist", "")
    phase = request.args.get("phase", "") if sees_clinical() else ""
    answer = backend().get("records", "/clients", q=q, therapist_id=therapist, phase=phase,
                           status=request.args.get("status", ""), per_page=100)
    found = items(answer)
    names = {t.get("therapist_id"): t.get("name") for t in therapists()}
    return render_template("clients.html", clients=found, q=q, therapist=therapist, phase=phase,
                           therapist_names=names)


@blueprint.get("/clients/new")
@signed_in(*STAFF)
def client_new():
    return render_template("client_new.html", therapists=therapists())


@blueprint.post("/clients/new")
@signed_in(*STAFF)
def client_create():
    f = request.form
    body = {"given_name": f.get("given_name", "").strip(), "family_name": f.get("family_name", "").strip(),
            "date_of_birth": f.get("date_of_birth", ""), "email": f.get("email") or None,
            "phone": f.get("phone") or None, "preferred_modality": f.get("preferred_modality", "face_to_face"),
            "reminder_channels": f.getlist("reminder_channels"), "therapist_id": f.get("therapist_id", ""),
            "referral_source": f.get("referral_source", "").strip()}
    created = backend().post("records", "/clients", body)
    form_flash_ok("Client registered.")
    return redirect(url_for("pages.client", client_id=created["client_id"]))


@blueprint.get("/clients/<client_id>")
@signed_in(*STAFF)
def client(client_id):
    api = backend()
    record = api.get("records", f"/clients/{client_id}")
    sessions, sessions_error = api.try_get("scheduling", f"/clients/{client_id}/sessions", default=[])
    context = {"c": record, "client_id": client_id, "sessions": items(sessions),
               "sessions_error": sessions_error, "clinical": sees_clinical()}
    if sees_clinical():
        # The full record already carries notes and tasks; the history is a separate read.
        history, context["history_error"] = api.try_get("records", f"/clients/{client_id}/history", default=[])
        context["notes"], context["history"] = record.get("notes") or [], items(history)[-30:]
        context["tasks"] = record.get("tasks") or []
    names = {t.get("therapist_id"): t.get("name") for t in therapists()}
    context["therapist_name"] = names.get(record.get("therapist_id"), record.get("therapist_id"))
    return render_template("client.html", **context)
