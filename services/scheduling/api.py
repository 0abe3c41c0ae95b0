"""Commands over HTTP: therapists, sessions, courses and boosters. Each route parses, checks
who may act, calls a handler in `application` and maps the result."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_smorest import Blueprint

from shared.auth import Forbidden, current_identity, requires
from shared.directory import check_client_access
from shared.domain import NotFound
from shared.events import new_id
from shared.web import context, request_metadata

from . import schemas as s
from .application import Scheduling
from .courses import BookCourse, PlanBoosters
from .domain import (
    AttendSession,
    Booking,
    CancelSession,
    MissSession,
    RegisterTherapist,
    RescheduleSession,
    SetAvailability,
)
from .projections import directory

blp = Blueprint("scheduling", __name__, description="Therapists, sessions, courses and boosters")
STAFF = ("admin", "therapist", "clinical_lead")


def scheduling() -> Scheduling:
    ctx = context()
    return Scheduling(
        ctx.store,
        ctx.projection(directory()),
        clock=current_app.config["SCHEDULING_CLOCK"],
        video_base=current_app.config["SCHEDULING_VIDEO_BASE"],
    )


def own_diary(therapist_id: str) -> None:
    """A therapist sees and changes only their own diary (admin and lead: everyone's)."""
    identity = current_identity()
    if identity.role == "therapist" and identity.therapist_id != therapist_id:
        raise Forbidden("you can see and change only your own diary")


def check_client(client_id: str) -> None:
    """Diary data, not clinical content: admin may; a therapist only for their own client."""
    client = context().projection(directory()).reader("clients").find_one({"_id": client_id})
    check_client_access(current_identity(), client)


def session_out(state) -> dict:
    return {**state.facts, "status": state.status}


# -- therapists -------------------------------------------------------------------------------
@blp.route("/therapists", methods=["POST"])
@requires("admin", "clinical_lead")
@blp.arguments(s.TherapistIn)
@blp.response(201, s.TherapistOut)
def register_therapist(body):
    """Register a therapist as bookable."""
    therapist_id = body.pop("therapist_id", None) or new_id()
    scheduling().therapist_command(
        therapist_id, RegisterTherapist(therapist_id=therapist_id, **body), request_metadata()
    )
    out = {"therapist_id": therapist_id, **body, "weekly_hours": [], "exceptions": []}
    return out, 201, {"Location": f"/therapists/{therapist_id}"}


@blp.route("/therapists/<therapist_id>/availability", methods=["PUT"])
@requires("admin", "clinical_lead", "therapist")
@blp.arguments(s.AvailabilityIn)
@blp.response(200, s.TherapistOut)
def set_availability(body, therapist_id):
    """Replace the weekly working hours (practice local time) and exceptions (leave, bank holidays)."""
    own_diary(therapist_id)
    app = scheduling()
    app.therapist_command(therapist_id, SetAvailability(**body), request_metadata())
    therapist = app.therapist(therapist_id)
    return {
        "therapist_id": therapist_id,
        "name": therapist.name,
        "modalities": therapist.modalities,
        "rooms": therapist.rooms,
        **body,
    }


# -- sessions ---------------------------------------------------------------------------------
@blp.route("/sessions", methods=["POST"])
@requires(*STAFF)
@blp.arguments(s.SessionIn)
@blp.response(201, s.SessionOut)
def book_session(body):
    """Book one session. 409 with the reason when the therapist, client or room is taken."""
    own_diary(body["therapist_id"])
    check_client(body["client_id"])
    therapist_id = body.pop("therapist_id")
    booking = Booking(session_id=new_id(), **body)
    event = scheduling().book(booking, therapist_id, request_metadata())
    out = {**event.data, "status": "booked"}
    return out, 201, {"Location": f"/sessions/{booking.session_id}"}


def _session_for_change(session_id: str):
    """The session as stored now, (state, version), read once: the access check, the
    command's first attempt and the answer all start from it."""
    app = scheduling()
    loaded = app.session(session_id)
    if loaded[0].status is None:
        raise NotFound(f"no session {session_id}")
    own_diary(loaded[0].facts["therapist_id"])
    return app, loaded


@blp.route("/sessions/<session_id>", methods=["GET"])
@requires(*STAFF, "service")
@blp.response(200, s.SessionOut)
def get_session(session_id):
    """One session as the write side knows it now, with the client's name (from the client
    directory) so a page can say whose session it is."""
    _, (state, _) = _session_for_change(session_id)
    client = (
        context()
        .projection(directory())
        .reader("clients")
        .find_one({"_id": state.facts["client_id"]}, {"given_name": 1, "family_name": 1})
        or {}
    )
    name = " ".join(p for p in (client.get("given_name"), client.get("family_name")) if p) or None
    return {**session_out(state), "client_name": name}


@blp.route("/sessions/<session_id>/reschedule", methods=["POST"])
@requires(*STAFF)
@blp.arguments(s.RescheduleIn)
@blp.response(200, s.SessionOut)
def reschedule(body, session_id):
    """Move a booked session (its claims move with it, atomically)."""
    app, loaded = _session_for_change(session_id)
    therapist = app.therapist(loaded[0].facts["therapist_id"])

    def command(current):
        return RescheduleSession(
            therapist=therapist,
            now=app.clock(),
            client_status=app.client_status(current.facts["client_id"]),
            **body,
        )

    return session_out(app.change_session(session_id, command, request_metadata(), loaded))


@blp.route("/sessions/<session_id>/cancel", methods=["POST"])
@requires(*STAFF)
@blp.arguments(s.CancelIn)
@blp.response(200, s.SessionOut)
def cancel(body, session_id):
    """Cancel by client, therapist or practice; `late` when less than 24 hours ahead."""
    app, loaded = _session_for_change(session_id)
    return session_out(
        app.change_session(
            session_id,
            lambda _s: CancelSession(now=app.clock(), **body),
            request_metadata(),
            loaded,
        )
    )


@blp.route("/sessions/<session_id>/attend", methods=["POST"])
@requires(*STAFF)
@blp.response(200, s.SessionOut)
def attend(session_id):
    """Mark a started session attended."""
    app, loaded = _session_for_change(session_id)
    return session_out(
        app.change_session(
            session_id, lambda _s: AttendSession(app.clock()), request_metadata(), loaded
        )
    )


@blp.route("/sessions/<session_id>/miss", methods=["POST"])
@requires(*STAFF)
@blp.response(200, s.SessionOut)
def miss(session_id):
    """Mark a started session missed (did not attend)."""
    app, loaded = _session_for_change(session_id)
    return session_out(
        app.change_session(
            session_id, lambda _s: MissSession(app.clock()), request_metadata(), loaded
        )
    )


# -- courses and boosters ---------------------------------------------------------------------
def _book_many(body, make, span):
    own_diary(body["therapist_id"])
    check_client(body["client_id"])
    app = scheduling()
    start = body["first_starts_at"]

    def command(plan_id):
        plan = app.plan(
            client_id=body["client_id"],
            therapist_id=body["therapist_id"],
            modality=body["modality"],
            room=body["room"],
            start=start,
            end=start + span,
        )
        return make(plan_id, plan)

    events = app.book_many(command, request_metadata())
    head = events[0].data
    sessions = [{**e.data, "status": "booked"} for e in events[1:]]
    out = {
        "course_id": head.get("course_id") or head.get("plan_id"),
        "sessions": sessions,
        "unbooked": head.get("unbooked") or [],
    }
    return out, 201, {"Location": f"/sessions/{sessions[0]['session_id']}"}


@blp.route("/courses", methods=["POST"])
@requires("admin", "clinical_lead", "therapist")
@blp.arguments(s.CourseIn)
@blp.response(201, s.ManyOut)
def book_course(body):
    """Book an IPT course (16 weekly sessions by default) at one local time, atomically.
    Sessions that cannot be booked are listed in `unbooked` with nearby free alternatives."""

    def make(plan_id, plan):
        return BookCourse(
            plan_id, plan, body["first_starts_at"], body["count"], body["interval_weeks"]
        )

    return _book_many(body, make, timedelta(weeks=body["count"] * body["interval_weeks"]))


@blp.route("/boosters", methods=["POST"])
@requires("admin", "clinical_lead", "therapist")
@blp.arguments(s.BoostersIn)
@blp.response(201, s.ManyOut)
def plan_boosters(body):
    """Plan booster sessions after a course: every `interval_months` (default 2)."""

    def make(plan_id, plan):
        return PlanBoosters(
            plan_id, plan, body["first_starts_at"], body["count"], body["interval_months"]
        )

    return _book_many(body, make, timedelta(days=31 * body["count"] * body["interval_months"]))
