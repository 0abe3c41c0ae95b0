"""Booking from free slots (one session, a course, or a booster series) and what can happen
to a session (reschedule, cancel, attended, did not attend). Every form is checked here
first, so bad input comes back beside its field rather than as a service error or a 500."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import redirect, render_template, request, url_for

from ..backend import BackendError, backend
from ..security import current_user, signed_in
from . import blueprint
from .common import LONDON, form_flash_ok, items, local_input_to_utc, parse_dt
from .diary import LATEST, STAFF, chosen_therapist, query_date, query_status, therapists_or_error

BOOKERS = ("admin", "clinical_lead", "therapist")
KINDS = ("treatment", "assessment", "booster")
MODALITIES = ("face_to_face", "video", "telephone")
# (field, label, lowest, highest, default): the services' own limits (scheduling schemas.py)
NUMBERS = {
    "course": [
        ("count", "Sessions in the course", 1, 52, 16),
        ("interval_weeks", "Every (weeks)", 1, 8, 1),
    ],
    "boosters": [
        ("booster_count", "Booster sessions", 1, 12, 3),
        ("interval_months", "Every (months)", 1, 12, 2),
    ],
}


def refused(reasons: dict) -> BackendError:
    """The portal's own check failing, shaped as a service's 422 so the form comes back."""
    return BackendError(
        422,
        "Please correct the fields marked below.",
        "portal",
        [{"field": k, "reason": v} for k, v in reasons.items()],
    )


@blueprint.get("/book")
@signed_in(*BOOKERS)
def book():
    everyone, unavailable = therapists_or_error()
    therapist_id = chosen_therapist(everyone)
    day = query_date("book-filter")
    until = min(day + timedelta(days=13), LATEST)
    modality = (
        request.args.get("modality")
        if request.args.get("modality") in MODALITIES
        else "face_to_face"
    )
    slots, slots_error = [], None
    if therapist_id and not unavailable:
        answer, slots_error = backend().try_get(
            "scheduling",
            "/slots",
            default=[],
            therapist_id=therapist_id,
            modality=modality,
            **{"from": day.isoformat(), "to": until.isoformat()},
        )
        slots = items(answer)
    clients_answer, clients_error = backend().try_get(
        "records", "/clients", default=[], therapist_id=therapist_id, status="active", per_page=100
    )
    wanted = _wanted_slot(slots, day, request.args.get("time", ""))
    return render_template(
        "book.html",
        therapists=everyone,
        unavailable=unavailable,
        therapist_id=therapist_id,
        day=day,
        slots=slots,
        slots_error=slots_error,
        modality=modality,
        clients=items(clients_answer),
        clients_error=clients_error,
        client_id=request.args.get("client", ""),
        wanted=wanted,
        wanted_time=request.args.get("time", ""),
        numbers=NUMBERS,
    ), query_status()


def slot_value(slot: dict) -> str:
    # A slot is offered as "<UTC start>|<first free room>" so a face-to-face booking gets a room.
    return f"{slot['starts_at']}|{(slot.get('rooms') or [''])[0]}"


def _wanted_slot(slots: list[dict], day, at: str) -> str | None:
    """The slot a click on the diary's free hour asked for, if it is still free."""
    if not at:
        return None
    for slot in slots:
        starts = parse_dt(slot.get("starts_at"))
        if (
            starts
            and starts.astimezone(LONDON).strftime("%Y-%m-%d %H:%M") == f"{day.isoformat()} {at}"
        ):
            return slot_value(slot)
    return None


def _whole(form, name: str, label: str, low: int, high: int, default: int, errors: dict) -> int:
    raw = (form.get(name) or "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        errors[name] = f"{label}: must be a whole number from {low} to {high}"
        return default
    if not low <= value <= high:
        errors[name] = f"{label}: must be from {low} to {high}"
    return value


def _slot(form, errors: dict) -> tuple[str | None, str]:
    starts_at, _, free_room = (form.get("slot") or "").partition("|")
    if not starts_at:
        errors["slot"] = "choose a free slot"
        return None, ""
    try:
        parsed = datetime.fromisoformat(starts_at.replace("Z", "+00:00"))
    except ValueError:
        errors["slot"] = "is not one of the free slots offered: choose one from the list"
        return None, ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LONDON)
    return parsed.isoformat(), free_room


def booking_body(form) -> tuple[str, dict]:
    """What to book and the request body for scheduling, or a `refused` error."""
    errors: dict = {}
    what = form.get("what") or "course"
    if what not in ("session", "course", "boosters"):
        errors["what"] = "choose a session, a course or a booster series"
    if not form.get("client_id"):
        errors["client_id"] = "choose a client"
    modality = form.get("modality") or "face_to_face"
    if modality not in MODALITIES:
        errors["modality"] = "choose face to face, video or telephone"
    starts_at, free_room = _slot(form, errors)
    body = {
        "client_id": form.get("client_id", ""),
        "therapist_id": form.get("therapist_id", ""),
        "modality": modality,
        "room": (form.get("room") or free_room or None) if modality == "face_to_face" else None,
    }
    if what == "session":
        kind = form.get("kind") or "treatment"
        if kind not in KINDS:
            errors["kind"] = "choose treatment, assessment or booster"
        body.update(kind=kind, starts_at=starts_at)
    else:
        body["first_starts_at"] = starts_at
        values = {
            name: _whole(form, name, label, low, high, default, errors)
            for name, label, low, high, default in NUMBERS.get(what, [])
        }
        if what == "course":
            body.update(values)
        elif what == "boosters":
            body.update(count=values["booster_count"], interval_months=values["interval_months"])
    if errors:
        raise refused(errors)
    return what, body


@blueprint.post("/book")
@signed_in(*BOOKERS)
def book_submit():
    what, body = booking_body(request.form)
    if what == "session":
        session = backend().post("scheduling", "/sessions", body)
        form_flash_ok("Session booked.")
        return redirect(url_for("pages.session_detail", session_id=session["session_id"]))
    path = "/courses" if what == "course" else "/boosters"
    booked = backend().post("scheduling", path, body)
    return render_template("course_booked.html", course=booked, body=body, what=what)


@blueprint.get("/sessions/<session_id>")
@signed_in(*STAFF)
def session_detail(session_id):
    session = backend().get("scheduling", f"/sessions/{session_id}")
    diary = None
    if current_user().role in ("therapist", "clinical_lead"):
        # before the session: what the client wrote since (records' homework diary)
        diary, _ = backend().try_get("records", f"/clients/{session['client_id']}/diary-entries")
    return render_template("session.html", s=session, diary=diary)


ACTIONS = {
    "reschedule": "Session moved.",
    "cancel": "Session cancelled.",
    "attend": "Marked attended.",
    "miss": "Marked did not attend.",
    # the client's own link to move or cancel it (scheduling's session links, issue 17)
    "client-link": "A link to move or cancel this session is being sent to the client.",
}


@blueprint.post("/sessions/<session_id>/<action>")
@signed_in(*STAFF)
def session_action(session_id, action):
    if action not in ACTIONS:
        return render_template(
            "error.html",
            status=404,
            title="Not found",
            detail="There is no such action on a session.",
        ), 404
    backend().post(
        "scheduling", f"/sessions/{session_id}/{action}", _action_body(action, request.form)
    )
    form_flash_ok(ACTIONS[action])
    return redirect(url_for("pages.session_detail", session_id=session_id))


def _action_body(action: str, form) -> dict:
    if action == "reschedule":
        try:  # what is not a time at all is refused here, beside the field
            datetime.fromisoformat(form.get("starts_at", ""))
        except ValueError:
            raise refused({"starts_at": "must be a date and time (UK time)"}) from None
        starts_at = local_input_to_utc(form.get("starts_at", ""))
        body = {"starts_at": starts_at, "reason": form.get("reason") or None}
        if form.get("modality"):
            body["modality"] = form["modality"]
        return body
    if action == "cancel":
        reasons = {}
        if form.get("by") not in ("client", "therapist", "practice"):
            reasons["by"] = "choose who cancelled"
        if not (form.get("reason") or "").strip():
            reasons["reason"] = "say why the session is cancelled"
        if reasons:
            raise refused(reasons)
        return {"by": form["by"], "reason": form["reason"].strip()}
    return {}
