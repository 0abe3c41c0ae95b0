"""Staff routes: instruments, instrument sets, answers entered in session, risk alerts,
questionnaire links for the notifications service and request status for reception."""

from __future__ import annotations

import uuid

from flask import current_app, request
from flask_smorest import Blueprint

from shared.audit import record_read
from shared.auth import current_identity, requires
from shared.domain import Conflict, Invalid, NotFound
from shared.events import new_id, utcnow
from shared.web import context, created, request_metadata

from . import application, domain
from .access import board, client_for, clients, known_client_for
from .instruments import DEFAULT_SET, INSTRUMENTS, describe
from .links import Links
from .schemas import (
    ANSWER_KEYS,
    AcknowledgeIn,
    AcknowledgeOut,
    AlertList,
    AlertQuery,
    InstrumentList,
    InstrumentSetIn,
    InstrumentSetOut,
    LinkOut,
    RequestList,
    RequestQuery,
    ResendOut,
    ResponseIn,
    ResponseOut,
)

blp = Blueprint("measures", __name__, description="Questionnaires, scores and risk alerts")
STAFF = ("admin", "therapist", "clinical_lead")
CLINICIANS = ("therapist", "clinical_lead")


@blp.route("/instruments", methods=["GET"])
@requires(*STAFF, "service")
@blp.response(200, InstrumentList)
def list_instruments():
    """The questionnaires: exact wording, options, ranges, bands and risk items."""
    return {
        "instruments": [describe(i) for i in INSTRUMENTS.values()],
        "default_set": list(DEFAULT_SET),
    }


@blp.route("/clients/<client_id>/instruments", methods=["GET"])
@requires(*CLINICIANS)
@blp.response(200, InstrumentSetOut)
def get_instrument_set(client_id):
    """The questionnaires this client is asked before each session."""
    client_for(client_id)
    return {
        "client_id": client_id,
        "instruments": list(application.instruments_for(context().store, client_id)),
    }


@blp.route("/clients/<client_id>/instruments", methods=["PUT"])
@requires(*CLINICIANS)
@blp.arguments(InstrumentSetIn)
@blp.response(200, InstrumentSetOut)
def put_instrument_set(body, client_id):
    """Choose the questionnaires for this client's future sessions (default PHQ-9, GAD-7, WSAS)."""
    known_client_for(client_id)
    application.set_instruments(
        context().store,
        domain.SetInstruments(client_id, tuple(body["instruments"])),
        request_metadata(),
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
    answers = {ANSWER_KEYS[k]: v for k, v in body["answers"].items()}
    response_id, request_id = _response_id(), body.get("request_id")
    location = f"/clients/{client['_id']}/responses/{response_id}"
    store, meta = context().store, request_metadata()
    done = application.recorded_completion(store, response_id, request_id)
    if done:
        return created(_response_out(client["_id"], response_id, done), location)
    course_id, number = _session_course(client["_id"], body.get("session_id"))
    command = domain.CompleteQuestionnaire(
        response_id=response_id,
        client_id=client["_id"],
        therapist_id=client["therapist_id"],
        answers=answers,
        source="staff",
        now=utcnow(),
        session_id=body.get("session_id"),
        course_id=course_id,
        session_number=number,
    )
    try:
        if request_id:
            state = application.request_state(store, request_id)
            if state.status != "none" and state.data["client_id"] != client["_id"]:
                raise Invalid("this request is for another client", field="request_id")
            events = application.complete_request(store, request_id, command, meta)
        else:
            events = application.record_response(store, command, meta)
    except Conflict:
        events = application.recorded_completion(store, response_id, request_id)
        if not events:  # not our own first submission: a real conflict
            raise
    return created(_response_out(client["_id"], response_id, events), location)


@blp.route("/risk-alerts", methods=["GET"])
@requires(*CLINICIANS)
@blp.arguments(AlertQuery, location="query")
@blp.response(200, AlertList)
def list_alerts(query):
    """Risk alerts (default: open), newest first. A therapist sees their own clients' only."""
    identity = current_identity()
    where: dict = {} if query["status"] == "all" else {"status": query["status"]}
    if identity.role == "therapist":  # the current caseload (records may reassign clients)
        mine = [
            c["_id"]
            for c in clients().find({"therapist_id": identity.therapist_id or "-"}, {"_id": 1})
        ]
        where["client_id"] = {"$in": mine}
    if query.get("client_id"):
        client_for(query["client_id"])
        if query["client_id"] not in where.get("client_id", {}).get("$in", [query["client_id"]]):
            return {"alerts": []}
        where["client_id"] = query["client_id"]
    found = list(board("alerts").find(where).sort("indicated_at", -1).limit(500))
    record_read("risk-alerts", query.get("client_id"))
    return {"alerts": [{"alert_id": a["_id"], **a} for a in found]}


@blp.route("/risk-alerts/<alert_id>/acknowledge", methods=["POST"])
@requires(*CLINICIANS)
@blp.arguments(AcknowledgeIn)
@blp.response(200, AcknowledgeOut)
def acknowledge(body, alert_id):
    """Record who acknowledged the alert, when, and what was done. Twice: 409."""
    store = context().store
    state = application.alert_state(store, alert_id)
    if state["status"] == "none":
        raise NotFound(f"no risk alert {alert_id}")
    client_for(state["client_id"])
    identity = current_identity()
    [event] = application.acknowledge_risk(
        store,
        alert_id,
        domain.AcknowledgeRisk(identity.sub, body["note"], utcnow()),
        request_metadata(),
    )
    return {
        "alert_id": alert_id,
        "status": "acknowledged",
        "acknowledged_by": identity.sub,
        "acknowledged_at": event.data["acknowledged_at"],
    }


def _links() -> Links:
    links = current_app.extensions.get("measures_links")
    if links is None:
        links = Links(context().db)
        links.ensure_indexes()
        current_app.extensions["measures_links"] = links
    return links


@blp.route("/questionnaire-requests/<request_id>/link", methods=["POST"])
@requires("service")
@blp.response(201, LinkOut)
def issue_link(request_id):
    """A fresh link for one message to the client (the notifications service calls this when
    it sends the message, once per channel). Links sent earlier keep working until the
    questionnaire is completed through any of them, withdrawn or expired. Services only: no
    staff role ever holds a usable client link (staff resend it to the client's channels)."""
    state = application.request_state(context().store, request_id)
    if state.status == "none":
        raise NotFound(f"no questionnaire request {request_id}")
    now = utcnow()
    if state.status != "requested":
        raise Conflict(f"this questionnaire is {state.status}", code=state.status)
    if state.data["expires_at"] <= now:
        raise Conflict("this questionnaire has expired", code="expired")
    token, expires_at = _links().issue(
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
    store = context().store
    state = application.request_state(store, request_id)
    if state.status == "none":
        raise NotFound(f"no questionnaire request {request_id}")
    client_for(state.data["client_id"], clinical=False)
    [event] = application.resend_request(
        store, request_id, domain.ResendQuestionnaire(utcnow()), request_metadata()
    )
    return {
        "request_id": request_id,
        "resend": event.data["resend"],
        "resent_at": event.data["resent_at"],
    }


@blp.route("/questionnaire-requests", methods=["GET"])
@requires(*STAFF)
@blp.arguments(RequestQuery, location="query")
@blp.response(200, RequestList)
def list_requests(query):
    """A client's questionnaire requests and whether they were sent, completed or expired
    (no answers or scores: reception may follow up)."""
    client_for(query["client_id"], clinical=False)
    now = utcnow()
    found = list(
        board("requests").find({"client_id": query["client_id"]}).sort("due_at", -1).limit(200)
    )
    links = _links().latest([r["_id"] for r in found])
    out = []
    for r in found:
        link = links.get(r["_id"], {})
        status = r["status"]
        if status == "requested":
            expired = r.get("expires_at") and r["expires_at"] <= now
            status = "expired" if expired else ("sent" if link else "requested")
        out.append(
            {
                "request_id": r["_id"],
                **{
                    k: r.get(k)
                    for k in (
                        "client_id",
                        "session_id",
                        "session_starts_at",
                        "due_at",
                        "expires_at",
                        "instruments",
                    )
                },
                "status": status,
                "link_issued_at": link.get("link_issued_at"),
                "resends": r.get("resends", 0),
            }
        )
    return {"requests": out}
