"""The diary: a therapist's day or week, booking from free slots (one session or a whole
course), and what can happen to a session (reschedule, cancel, attended, did not attend)."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from flask import abort, redirect, render_template, request, url_for

from ..backend import backend
from ..security import current_user, signed_in
from .common import LONDON, form_flash_ok, form_int, items, local_input_to_utc, parse_dt
from . import blueprint

STAFF = ("admin", "therapist", "clinical_lead")
BOOKERS = ("admin", "clinical_lead", "therapist")


def therapists() -> list[dict]:
    found, _ = backend().try_get("scheduling", "/therapists", default=[])
    return items(found)


def chosen_therapist(list_: list[dict]) -> str | None:
    user = current_user()
    if user.role == "therapist":
        return user.therapist_id
    wanted = request.values.get("therapist")
    if wanted:
        return wanted
    return (list_[0].get("therapist_id") or list_[0].get("id")) if list_ else None


def _day(value: str | None) -> date:
    try:
        return date.fromisoformat(value) if value else datetime.now(LONDON).date()
    except ValueError:
        abort(400, description="date must be YYYY-MM-DD")


@blueprint.get("/diary")
@signed_in(*STAFF)
def diary():
    everyone = therapists()
    therapist_id = chosen_therapist(everyone)
    view = "day" if request.args.get("view") == "day" else "week"
    day = _day(request.args.get("date"))
    start = day if view == "day" else day - timedelta(days=day.weekday())
    end = start + timedelta(days=1 if view == "day" else 7)
    sessions, error = [], None
    if therapist_id:
        answer, error = backend().try_get("scheduling", f"/therapists/{therapist_id}/diary",
                                          default=[], date=day.isoformat(), view=view)
        sessions = items(answer)
    days = defaultdict(list)
    for s in sorted(sessions, key=lambda s: s.get("starts_at") or ""):
        starts = parse_dt(s.get("starts_at"))
        if starts:
            days[starts.astimezone(LONDON).date()].append(s)
    dates = [start + timedelta(days=i) for i in range((end - start).days)]
    return render_template("diary.html", therapists=everyone, therapist_id=therapist_id,
                           view=view, day=day, dates=dates, days=days, error=error,
                           prev=(start - timedelta(days=1 if view == "day" else 7)).isoformat(),
                           next=end.isoformat() if view == "week" else (day + timedelta(days=1)).isoformat())


@blueprint.get("/book")
@signed_in(*BOOKERS)
def book():
    everyone = therapists()
    therapist_id = chosen_therapist(everyone)
    day = _day(request.args.get("date"))
    until = day + timedelta(days=13)
    modality = request.args.get("modality") or "face_to_face"
    slots, slots_error = [], None
    if therapist_id:
        answer, slots_error = backend().try_get(
            "scheduling", "/slots", default=[], therapist_id=therapist_id, modality=modality,
            **{"from": day.isoformat(), "to": until.isoformat()})
        slots = items(answer)
    clients_answer, clients_error = backend().try_get("records", "/clients", default=[],
                                                     therapist_id=therapist_id, status="active",
                                                     per_page=100)
    return render_template("book.html", therapists=everyone, therapist_id=therapist_id, day=day,
                           slots=slots, slots_error=slots_error, modality=modality, clients=items(clients_answer),
                           clients_error=clients_error, client_id=request.args.get("client", ""))


def _booking_body(form) -> dict:
    # A slot is offered as "<UTC start>|<first free room>" so a face-to-face booking gets a room.
    starts_at, _, free_room = (form.get("slot") or "").partition("|")
    if not starts_at:
        abort(400, description="choose a slot")
    modality = form.get("modality", "face_to_face")
    body = {"client_id": form.get("client_id", ""), "therapist_id": form.get("therapist_id", ""),
            "modality": modality,
            "room": (form.get("room") or free_room or None) if modality == "face_to_face" else None}
    body["starts_at" if form.get("what") == "session" else "first_starts_at"] = (
        starts_at if "+" in starts_at or starts_at.endswith("Z") else local_input_to_utc(starts_at))
    return body


@blueprint.post("/book")
@signed_in(*BOOKERS)
def book_submit():
    form = request.form
    body = _booking_body(form)
    if form.get("what") == "session":
        body["kind"] = form.get("kind", "treatment")
        session = backend().post("scheduling", "/sessions", body)
        form_flash_ok("Session booked.")
        return redirect(url_for("pages.session_detail", session_id=session["session_id"]))
    # scheduling states the real bounds and refuses beyond them; these only keep it a number.
    body["count"] = form_int("count", 16, 1, 1000)
    body["interval_weeks"] = form_int("interval_weeks", 1, 1, 1000)
    course = backend().post("scheduling", "/courses", body)
    return render_template("course_booked.html", course=course, body=body)


@blueprint.get("/sessions/<session_id>")
@signed_in(*STAFF)
def session_detail(session_id):
    session = backend().get("scheduling", f"/sessions/{session_id}")
    return render_template("session.html", s=session)


@blueprint.post("/sessions/<session_id>/<action>")
@signed_in(*STAFF)
def session_action(session_id, action):
    if action not in ("reschedule", "cancel", "attend", "miss"):
        abort(404)
    try:
        body = _action_body(action, request.form)
    except ValueError:
        abort(400, description="the new time is not a date and time")
    backend().post("scheduling", f"/sessions/{session_id}/{action}", body)
    form_flash_ok({"reschedule": "Session moved.", "cancel": "Session cancelled.",
                   "attend": "Marked attended.", "miss": "Marked did not attend."}[action])
    return redirect(url_for("pages.session_detail", session_id=session_id))


def _action_body(action: str, form) -> dict:
    if action == "reschedule":
        body = {"starts_at": local_input_to_utc(form.get("starts_at", "")), "reason": form.get("reason") or None}
        if form.get("modality"):
            body["modality"] = form["modality"]
        return body
    if action == "cancel":
        return {"by": form.get("by", ""), "reason": form.get("reason", "")}
    return {}
