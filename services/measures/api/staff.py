"""Staff writes: a client's instrument set, answers entered in session, acknowledging a
risk alert, resending a questionnaire link; and the fresh link the notifications service
asks for when it sends one. Parse, call the Application, map the result. The routes are on
the blueprint of queries/staff.py, beside the reads of the same resources."""

from __future__ import annotations

import uuid

from flask import current_app, request

from shared.auth import current_identity, requires
from shared.domain import Conflict, Invalid, NotFound
from shared.events import new_id, utcnow
from shared.web import created, request_metadata

from .. import domain
from ..queries.access import application, board, client_for, known_client_for, links
from ..queries.staff import CLINICIANS, STAFF, blp
from ..schemas import (
    AcknowledgeIn,
    AcknowledgeOut,
    InstrumentSetIn,
    InstrumentSetOut,
    LinkOut,
    ResendOut,
    ResponseIn,
    ResponseOut,
)


@blp.route("/clients/<client_id>/instruments", methods=["PUT"])
@requires(*CLINICIANS)
@blp.arguments(InstrumentSetIn)
@blp.response(200, InstrumentSetOut)
def put_instrument_set(body, client_id):
    """Choose the questionnaires for this client's future sessions (default PHQ-9, GAD-7, WSAS)."""
    known_client_for(client_id)
    application().set_instruments(
        domain.SetInstruments(client_id, tuple(body["instruments"])), request_metadata()
    )
    return {"client_id": client_id, "instruments": body["instruments"]}


def _session_course(client_id: str, session_id: str | None) -> tuple[str | None, int | None]:
    """The course answers count towards: the session's, else the client's latest booked one."""
    sessions = board("sessions")
    if session_id:
        found = sessions.find_one({"_id": session_id})
        if found is None or found.get("client_id") != client_id:
            raise Invalid("no such session for this client", field="session_id")
        return found.get("course_id"), found.get("number")
    latest = sessions.find_one(
        {"client_id": client_id, "course_id": {"$ne": None}}, sort=[("starts_at", -1)]
    )
    return (latest.get("course_id"), None) if latest else (None, None)


_RESPONSE_IDS = uuid.UUID("0b7d4f1e-2f6c-4d8a-9a51-3c1f0e6b2a77")


def _response_id() -> str:
    """With an `Idempotency-Key` the response id is derived from it (and who sent it), so a
    form submitted twice names the same response: the second finds it stored (or loses the
    race on the stream's version) and is answered with the first one's result."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return new_id()
    return str(uuid.uuid5(_RESPONSE_IDS, f"{current_identity().sub}:{key[:200]}"))


def _response_out(client_id: str, response_id: str, events) -> dict:
    completed = events[0].data
    return ResponseOut().dump(
        {
            "response_id": response_id,
            "client_id": client_id,
            "request_id": completed.get("request_id"),
            "session_id": completed.get("session_id"),
            "completed_at": completed["completed_at"],
            "scores": completed["scores"],
            "risk_alerts": [e.data for e in events[1:]],
        }
    )


@blp.route("/responses", methods=["POST"])
@requires(*CLINICIANS)
@blp.arguments(ResponseIn)
@blp.response(201, ResponseOut)
@blp.doc(
    parameters=[
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"type": "string", "maxLength": 200},
            "description": "one per form shown: the same key stores the answers once",
        }
    ]
)
def post_response(body):
    """Answers entered by staff in session, scored at once by the same rule as the client's
    link (422 naming the items when the instrument's rule cannot score them). A risk item
    above 0 or left unanswered raises a `RiskIndicated` in the same transaction. With
    `request_id` it completes that request."""
    client = known_client_for(body["client_id"])
    response_id, request_id = _response_id(), body.get("request_id")
    location = f"/clients/{client['_id']}/responses/{response_id}"
    app, meta = application(), request_metadata()
    done = app.recorded_completion(response_id, request_id)
    if done:
        return created(_response_out(client["_id"], response_id, done), location)
    course_id, number = _session_course(client["_id"], body.get("session_id"))
    command = domain.CompleteQuestionnaire(
        response_id=response_id,
        client_id=client["_id"],
        therapist_id=client["therapist_id"],
        answers=dict(body["answers"]),
        source="staff",
        now=utcnow(),
        session_id=body.get("session_id"),
        course_id=course_id,
        session_number=number,
    )

    def same_client(state: domain.RequestState) -> None:
        if state.status != "none" and state.data["client_id"] != client["_id"]:
            raise Invalid("this request is for another client", field="request_id")

    try:
        if request_id:
            events = app.complete_request(request_id, command, meta, check=same_client)
        else:
            events = app.record_response(command, meta)
    except Conflict:
        events = app.recorded_completion(response_id, request_id)
        if not events:  # not our own first submission: a real conflict
            raise
    return created(_response_out(client["_id"], response_id, events), location)


@blp.route("/risk-alerts/<alert_id>/acknowledge", methods=["POST"])
@requires(*CLINICIANS)
@blp.arguments(AcknowledgeIn)
@blp.response(200, AcknowledgeOut)
def acknowledge(body, alert_id):
    """Record who acknowledged the alert, when, and what was done. Twice: 409."""

    def may_see(state: dict) -> None:
        if state["status"] == "none":
            raise NotFound(f"no risk alert {alert_id}")
        client_for(state["client_id"])

    identity = current_identity()
    outcome = application().acknowledge_risk(
        alert_id,
        domain.AcknowledgeRisk(identity.sub, body["note"], utcnow()),
        request_metadata(),
        check=may_see,
    )
    return {
        "alert_id": alert_id,
        "status": "acknowledged",
        "acknowledged_by": identity.sub,
        "acknowledged_at": outcome.events[0].data["acknowledged_at"],
    }


@blp.route("/questionnaire-requests/<request_id>/link", methods=["POST"])
@requires("service")
@blp.response(201, LinkOut)
def issue_link(request_id):
    """A fresh link for one message to the client (the notifications service calls this when
    it sends the message, once per channel). Links sent earlier keep working until the
    questionnaire is completed through any of them, withdrawn or expired. Services only: no
    staff role ever holds a usable client link (staff resend it to the client's channels)."""
    state = application().request_state(request_id)
    if state.status == "none":
        raise NotFound(f"no questionnaire request {request_id}")
    now = utcnow()
    if state.status != "requested":
        raise Conflict(f"this questionnaire is {state.status}", code=state.status)
    if state.data["expires_at"] <= now:
        raise Conflict("this questionnaire has expired", code="expired")
    token, expires_at = links().issue(
        request_id, state.data["client_id"], state.data["expires_at"], now
    )
    url = f"{current_app.config['MEASURES_PUBLIC_URL'].rstrip('/')}/q/{token}"
    return created(LinkOut().dump({"url": url, "expires_at": expires_at}), url)


@blp.route("/questionnaire-requests/<request_id>/resend", methods=["POST"])
@requires(*STAFF)
@blp.response(202, ResendOut)
def resend_link(request_id):
    """Send the questionnaire link to the client's own channels again (reception or a
    clinician, e.g. the client lost the message). The notifications service sends a fresh
    link on each channel the client consented to; the links already sent keep working. The
    caller never sees a link. A second resend within two minutes: 409."""

    def may_resend(state: domain.RequestState) -> None:
        if state.status == "none":
            raise NotFound(f"no questionnaire request {request_id}")
        client_for(state.data["client_id"], clinical=False)

    outcome = application().resend_questionnaire(
        request_id, domain.ResendQuestionnaire(utcnow()), request_metadata(), check=may_resend
    )
    event = outcome.events[0]
    return {
        "request_id": request_id,
        "resend": event.data["resend"],
        "resent_at": event.data["resent_at"],
    }
