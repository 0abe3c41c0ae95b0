"""Commands over HTTP: therapists, sessions, courses and boosters, and the calendar feed's
token. Each route parses, calls the Application (which checks who may act on the state it
loads) and maps the result; the reads are in queries.py, on these blueprints."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import url_for

from shared.auth import current_identity, requires
from shared.domain import NotFound
from shared.events import new_id, utcnow
from shared.web import request_metadata

from . import schemas as s
from .application import application, own_diary
from .domain.courses import BookCourse, PlanBoosters
from .domain.session import BOOKED, Booking, SessionState
from .domain.therapist import RegisterTherapist, SetAvailability
from .queries import (
    STAFF,
    blp,
    booking_link_out,
    calendar_blp,
    calendar_tokens,
    links_blp,
    session_links_blp,
    session_out,
    token_digest,
)

# the writes are on queries' blueprints (one resource, one group in the OpenAPI document)
BLUEPRINTS: list = []


# -- therapists -------------------------------------------------------------------------------
@blp.route("/therapists", methods=["POST"])
@requires("admin", "clinical_lead")
@blp.arguments(s.TherapistIn)
@blp.response(201, s.TherapistOut)
def register_therapist(body):
    """Register a therapist as bookable."""
    therapist_id = body.pop("therapist_id", None) or new_id()
    command = RegisterTherapist(therapist_id=therapist_id, **body)
    application().register_therapist(command, request_metadata())
    out = {"therapist_id": therapist_id, **body, "weekly_hours": [], "exceptions": []}
    return out, 201, {"Location": f"/therapists/{therapist_id}"}


@blp.route("/therapists/<therapist_id>/availability", methods=["PUT"])
@requires("admin", "clinical_lead", "therapist")
@blp.arguments(s.AvailabilityIn)
@blp.response(200, s.TherapistOut)
def set_availability(body, therapist_id):
    """Replace the weekly working hours (practice local time) and exceptions (leave, bank
    holidays)."""
    therapist = application().set_availability(
        therapist_id, SetAvailability(**body), current_identity(), request_metadata()
    )
    return {
        "therapist_id": therapist_id,
        "name": therapist.name,
        "modalities": therapist.modalities,
        "rooms": therapist.rooms,
        **body,
    }


@calendar_blp.route("/therapists/<therapist_id>/calendar-token", methods=["POST"])
@requires("therapist")
@calendar_blp.response(201, s.CalendarTokenOut)
def new_calendar_token(therapist_id):
    """Issue the feed's secret token (shown once); any earlier token stops working. Only
    the therapist themselves: a token is a credential to their diary, and minting one
    revokes the subscription they have (reception could do both: issue 15, #16)."""
    own_diary(current_identity(), therapist_id)
    app = application()
    if not app.therapist(therapist_id).exists:
        raise NotFound(f"no therapist {therapist_id}")
    token = secrets.token_urlsafe(32)
    calendar_tokens().update_one(
        {"_id": therapist_id},
        {"$set": {"sha256": token_digest(token), "issued_at": utcnow()}},
        upsert=True,
    )
    path = url_for("calendar.feed", therapist_id=therapist_id)
    return {"token": token, "url": f"{path}?token={token}"}, 201, {"Location": path}


# -- sessions ---------------------------------------------------------------------------------
@blp.route("/sessions", methods=["POST"])
@requires(*STAFF)
@blp.arguments(s.SessionIn)
@blp.response(201, s.SessionOut)
def book_session(body):
    """Book one session. 409 with the reason when the therapist, client or room is taken."""
    therapist_id = body.pop("therapist_id")
    booking = Booking(session_id=new_id(), **body)
    who = current_identity()
    event = application().book(booking, therapist_id, who, request_metadata())
    out = session_out(SessionState(BOOKED, dict(event.data)), who)
    return out, 201, {"Location": f"/sessions/{booking.session_id}"}


@blp.route("/sessions/<session_id>/reschedule", methods=["POST"])
@requires(*STAFF)
@blp.arguments(s.RescheduleIn)
@blp.response(200, s.SessionOut)
def reschedule(body, session_id):
    """Move a booked session (its claims move with it, atomically)."""
    outcome = application().reschedule(session_id, current_identity(), request_metadata(), **body)
    return session_out(outcome.state, current_identity())


@blp.route("/sessions/<session_id>/cancel", methods=["POST"])
@requires(*STAFF)
@blp.arguments(s.CancelIn)
@blp.response(200, s.SessionOut)
def cancel(body, session_id):
    """Cancel by client, therapist or practice; `late` when less than 24 hours ahead."""
    outcome = application().cancel(
        session_id, body["by"], body["reason"], current_identity(), request_metadata()
    )
    return session_out(outcome.state, current_identity())


@blp.route("/sessions/<session_id>/attend", methods=["POST"])
@requires(*STAFF)
@blp.response(200, s.SessionOut)
def attend(session_id):
    """Mark a started session attended."""
    outcome = application().attend(session_id, current_identity(), request_metadata())
    return session_out(outcome.state, current_identity())


@blp.route("/sessions/<session_id>/miss", methods=["POST"])
@requires(*STAFF)
@blp.response(200, s.SessionOut)
def miss(session_id):
    """Mark a started session missed (did not attend)."""
    outcome = application().miss(session_id, current_identity(), request_metadata())
    return session_out(outcome.state, current_identity())


# -- courses and boosters ---------------------------------------------------------------------
def _book_many(body, make, span):
    who, app = current_identity(), application()
    own_diary(who, body["therapist_id"])
    app.client(body["client_id"], who)
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
    sessions = [session_out(SessionState(BOOKED, dict(e.data)), who, app) for e in events[1:]]
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


# -- booking links ------------------------------------------------------------------------
def _links():
    from .application.booking_links import BookingLinks

    links = BookingLinks(application())
    links.ensure_indexes()
    return links


@links_blp.route("/booking-links", methods=["POST"])
@requires("admin", "clinical_lead", "service")
@links_blp.arguments(s.BookingLinkIn)
@links_blp.response(201, s.BookingLinkOut)
def issue_booking_link(body):
    """Offer a person some of a therapist's free times by link (`BookingLinkIssued`). The
    answer never holds the link's token: the notifications service fetches one for each
    message to the person's own channels."""
    from .domain.booking_link import IssueBookingLink

    app = application()
    command = IssueBookingLink(
        link_id=new_id(),
        client_id=body["client_id"],
        therapist=app.therapist(body["therapist_id"]),
        kind=body["kind"],
        modality=body["modality"],
        starts=tuple(body["starts"]),
        now=app.clock(),
        room=body["room"],
        enquiry_id=body["enquiry_id"],
        expires_at=body["expires_at"],
    )
    outcome = _links().issue(command, request_metadata())
    return (
        booking_link_out(outcome.state),
        201,
        {"Location": f"/booking-links/{command.link_id}"},
    )


@links_blp.route("/booking-links/<link_id>/token", methods=["POST"])
@requires("service")
@links_blp.response(201, s.LinkTokenOut)
def mint_booking_link_token(link_id):
    """A fresh token for one message carrying the link (services only: no staff role ever
    holds one). 404 once the link is used or expired."""
    token, expires_at = _links().mint(link_id)
    return {"token": token, "expires_at": expires_at}, 201


@links_blp.route("/booking-links/open", methods=["POST"])
@requires("service")
@links_blp.arguments(s.LinkTokenIn)
@links_blp.response(200, s.LinkOfferOut)
def open_booking_link(body):
    """What a token offers (the portal's public page asks, as the portal): the offered
    times still free. Unknown, used and expired tokens are one 404."""
    links = _links()
    state = links.open(body["token"])
    therapist = links.app.therapist(state.facts["therapist_id"])
    return {**state.facts, "therapist_name": therapist.name, "free": links.free_times(state)}


@links_blp.route("/booking-links/book", methods=["POST"])
@requires("service")
@links_blp.arguments(s.LinkBookIn)
@links_blp.response(201, s.SessionOut)
def book_by_link(body):
    """Book the chosen time (`BookingLinkUsed` and `SessionBooked`, with the slot claims of
    a staff booking, in one transaction). 409 `slot_taken` when the time went meanwhile,
    404 when the link is not valid any more, 422 for a time it did not offer."""
    event = _links().book(body["token"], body["starts_at"], request_metadata())
    out = {**event.data, "status": "booked"}
    return out, 201, {"Location": f"/sessions/{event.data['session_id']}"}


# -- the client's own link to one session -------------------------------------------------
def _session_links():
    from .application.session_links import SessionLinks

    links = SessionLinks(application())
    links.ensure_indexes()
    return links


@session_links_blp.route("/sessions/<session_id>/client-link", methods=["POST"])
@requires(*STAFF)
@session_links_blp.response(201, s.SessionLinkOut)
def issue_session_link(session_id):
    """Send the client a link to cancel or move this session themselves
    (`SessionLinkIssued`; notifications sends it to the client's own channels). It expires
    at the session's start at the latest and changes the session once. 409 for a session
    that is not booked or has started."""
    outcome = _session_links().issue(session_id, current_identity(), request_metadata())
    out = {**outcome.state.facts, "status": outcome.state.status}
    return out, 201, {"Location": f"/sessions/{session_id}"}


@session_links_blp.route("/session-links/<link_id>/token", methods=["POST"])
@requires("service")
@session_links_blp.response(201, s.LinkTokenOut)
def mint_session_link_token(link_id):
    """A fresh token for one message carrying the link (services only). 404 once used or
    expired."""
    token, expires_at = _session_links().mint(link_id)
    return {"token": token, "expires_at": expires_at}, 201


@session_links_blp.route("/session-links/open", methods=["POST"])
@requires("service")
@session_links_blp.arguments(s.LinkTokenIn)
@session_links_blp.response(200, s.SessionLinkOfferOut)
def open_session_link(body):
    """What a token shows the client (the portal's public page asks, as the portal): the
    session, whether cancelling now is late, and the free times it may move to. Unknown,
    used and expired tokens, and a session changed since, are one 404."""
    return _session_links().offer(body["token"])


@session_links_blp.route("/session-links/cancel", methods=["POST"])
@requires("service")
@session_links_blp.arguments(s.LinkTokenIn)
@session_links_blp.response(200, s.SessionOut)
def cancel_by_session_link(body):
    """The client cancels (`SessionLinkUsed` and `SessionCancelled` by the client, `late`
    inside the notice period exactly as a staff cancellation records it)."""
    event = _session_links().cancel(body["token"], request_metadata())
    return {**event.data, "status": "cancelled"}


@session_links_blp.route("/session-links/reschedule", methods=["POST"])
@requires("service")
@session_links_blp.arguments(s.LinkBookIn)
@session_links_blp.response(200, s.SessionOut)
def reschedule_by_session_link(body):
    """The client moves the session to one of the free times shown (`SessionLinkUsed` and
    `SessionRescheduled`, with the claims of a staff move). 409 `slot_taken` when the time
    went meanwhile, 409 `inside_notice` less than 24 hours ahead, 422 for a time not shown."""
    event = _session_links().reschedule(body["token"], body["starts_at"], request_metadata())
    # the client's join link goes to their own channels only, never in an answer
    return {**event.data, "status": "booked", "video_link": None}
