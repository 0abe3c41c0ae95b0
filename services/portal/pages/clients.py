"""Clients: the list (search, therapist, phase), registering a client, the record, and
correcting a client's details. Reception (admin) sees details and sessions only; the
clinical parts are neither fetched nor linked for them (the services refuse them anyway)."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ..backend import backend
from ..security import current_user, signed_in, user_store
from . import blueprint
from .common import form_flash_ok, items
from .diary import therapists
from .sessions import note_sessions, session_label, today_or_latest_attended

STAFF = ("admin", "therapist", "clinical_lead")
CLINICAL = ("therapist", "clinical_lead")
DETAILS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "email",
    "phone",
    "nhs_number",
    "preferred_modality",
    "referral_source",
)


def sees_clinical() -> bool:
    return current_user().role in CLINICAL


def therapist_names(listed: list[dict] | None = None) -> dict:
    """{therapist_id: name}: scheduling's therapists, and the portal's own staff users for any
    it does not list (or when it is not answering), so a page never shows a bare id."""
    names = {
        doc["therapist_id"]: doc["name"]
        for doc in user_store().users.find(
            {"therapist_id": {"$nin": [None, ""]}}, {"therapist_id": 1, "name": 1}
        )
    }
    listed = therapists() if listed is None else listed
    names.update(
        {t["therapist_id"]: t["name"] for t in listed if t.get("therapist_id") and t.get("name")}
    )
    return names


@blueprint.get("/clients")
@signed_in(*STAFF)
def clients():
    user = current_user()
    q = request.args.get("q", "").strip()
    therapist = user.therapist_id if user.role == "therapist" else request.args.get("therapist", "")
    phase = request.args.get("phase", "") if sees_clinical() else ""
    answer = backend().get(
        "records",
        "/clients",
        q=q,
        therapist_id=therapist,
        phase=phase,
        status=request.args.get("status", ""),
        per_page=100,
    )
    return render_template(
        "clients.html",
        clients=items(answer),
        q=q,
        therapist=therapist,
        phase=phase,
        therapist_names=therapist_names(),
    )


@blueprint.get("/clients/new")
@signed_in(*STAFF)
def client_new():
    return render_template("client_new.html", therapists=therapists())


@blueprint.post("/clients/new")
@signed_in(*STAFF)
def client_create():
    f = request.form
    body = {
        "given_name": f.get("given_name", "").strip(),
        "family_name": f.get("family_name", "").strip(),
        "date_of_birth": f.get("date_of_birth", ""),
        "email": f.get("email") or None,
        "phone": f.get("phone") or None,
        "preferred_modality": f.get("preferred_modality", "face_to_face"),
        "reminder_channels": f.getlist("reminder_channels"),
        "therapist_id": f.get("therapist_id", ""),
        "referral_source": f.get("referral_source", "").strip(),
    }
    created = backend().post("records", "/clients", body)
    form_flash_ok("Client registered.")
    return redirect(url_for("pages.client", client_id=created["client_id"]))


@blueprint.get("/clients/<client_id>")
@signed_in(*STAFF)
def client(client_id):
    api = backend()
    record = api.get("records", f"/clients/{client_id}")
    sessions, sessions_error = api.try_get(
        "scheduling", f"/clients/{client_id}/sessions", default=[]
    )
    sessions = items(sessions)
    context = {
        "c": record,
        "client_id": client_id,
        "sessions": sessions,
        "sessions_error": sessions_error,
        "clinical": sees_clinical(),
        "in_care": (record.get("status") or "active") == "active",
    }
    if sees_clinical():
        # The full record already carries notes and tasks; the history is a separate read.
        history, context["history_error"] = api.try_get(
            "records", f"/clients/{client_id}/history", default=[]
        )
        context["notes"], context["history"] = record.get("notes") or [], items(history)[-30:]
        context["tasks"] = record.get("tasks") or []
        chosen = today_or_latest_attended(sessions)
        context["note_sessions"] = note_sessions(sessions)
        context["default_session"] = chosen.get("session_id") if chosen else None
        context["session_label"] = {s.get("session_id"): session_label(s) for s in sessions}
    context["therapist_name"] = therapist_names().get(
        record.get("therapist_id"), record.get("therapist_id")
    )
    return render_template("client.html", **context)


@blueprint.route("/clients/<client_id>/edit", methods=["GET", "POST"])
@signed_in(*STAFF)
def client_edit(client_id):
    """Correct the details (records keeps the reason and the earlier values in the history).
    Reception and the clinical lead may give the client to another therapist; a therapist may
    not, so the choice is not offered to them."""
    api = backend()
    record = api.get("records", f"/clients/{client_id}")
    may_reassign = current_user().role != "therapist"
    if request.method == "POST":
        changes = _changed_details(record, request.form, may_reassign)
        if changes:
            api.call(
                "PATCH",
                "records",
                f"/clients/{client_id}",
                json={**changes, "reason": request.form.get("reason", "").strip()},
            )
            form_flash_ok("Details corrected.")
        else:
            form_flash_ok("Nothing was changed.")
        return redirect(url_for("pages.client", client_id=client_id) + "#details")
    listed = therapists() if may_reassign else []
    return render_template(
        "client_edit.html",
        c=record,
        client_id=client_id,
        therapists=listed,
        may_reassign=may_reassign,
    )


def _changed_details(record: dict, form, may_reassign: bool) -> dict:
    """Only what differs from the record (records refuses a correction that changes nothing)."""
    wanted = {k: form.get(k, "").strip() or None for k in DETAILS}
    wanted["reminder_channels"] = form.getlist("reminder_channels")
    if may_reassign and form.get("therapist_id"):
        wanted["therapist_id"] = form["therapist_id"]
    if wanted.get("nhs_number") and record.get("nhs_number") == wanted["nhs_number"].replace(
        " ", ""
    ).replace("-", ""):
        wanted["nhs_number"] = record["nhs_number"]
    return {k: v for k, v in wanted.items() if (v or None) != (record.get(k) or None)}
