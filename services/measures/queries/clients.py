"""Clinical reads of one client: responses, trajectory, outcomes, FHIR export. Each is
clinical content: admin gets 403, a therapist only their own clients, and every read is
recorded in the audit trail."""

from __future__ import annotations

from flask_smorest import Blueprint

from shared.audit import record_read
from shared.auth import requires
from shared.subject_access import PartOut, documents, events_about, part
from shared.web import context

from ..domain import INSTRUMENTS
from ..schemas import FhirBundle, Outcomes, ResponseRows, Trajectory
from .access import board, client_for
from .fhir import bundle
from .staff import bands

blp = Blueprint("client_measures", __name__, description="A client's scores and outcomes")
CLINICIANS = ("therapist", "clinical_lead")


def outcome_row(episode: dict) -> dict:
    return {
        "episode_id": episode["_id"],
        "course_id": episode.get("course_id"),
        "therapist_id": episode.get("therapist_id"),
        **episode["outcome"],
        "first_measured_at": episode.get("first_measured_at"),
        "last_measured_at": episode.get("last_measured_at"),
    }


@blp.route("/clients/<client_id>/responses", methods=["GET"])
@requires(*CLINICIANS)
@blp.response(200, ResponseRows)
def responses(client_id):
    """Every completed questionnaire with its answers and scores, oldest first."""
    client_for(client_id)
    rows = list(board("responses").find({"client_id": client_id}).sort("completed_at", 1))
    record_read("measures/responses", client_id)
    return {"client_id": client_id, "responses": [{"response_id": r["_id"], **r} for r in rows]}


@blp.route("/clients/<client_id>/trajectory", methods=["GET"])
@requires(*CLINICIANS)
@blp.response(200, Trajectory)
def trajectory(client_id):
    """Totals per instrument per session, with the caseness line and the bands to draw."""
    client_for(client_id)
    points = list(board("points").find({"client_id": client_id}).sort("at", 1))
    series = []
    for code, instrument in INSTRUMENTS.items():
        mine = [p for p in points if p["instrument"] == code]
        if mine:
            series.append(
                {
                    "instrument": code,
                    "caseness": instrument.caseness,
                    "total_range": [0, instrument.total_max],
                    "bands": bands(instrument),
                    "points": mine,
                }
            )
    record_read("measures/trajectory", client_id)
    return {"client_id": client_id, "series": series}


@blp.route("/clients/<client_id>/outcomes", methods=["GET"])
@requires(*CLINICIANS)
@blp.response(200, Outcomes)
def outcomes(client_id):
    """Per course of treatment: paired PHQ-9/GAD-7 scores and the NHS Talking Therapies
    outcome (caseness, recovery, reliable improvement/deterioration/recovery)."""
    client_for(client_id)
    episodes = list(board("episodes").find({"client_id": client_id}))
    record_read("measures/outcomes", client_id)
    return {"client_id": client_id, "outcomes": [outcome_row(e) for e in episodes]}


@blp.route("/clients/<client_id>/fhir", methods=["GET"])
@requires(*CLINICIANS)
@blp.response(200, FhirBundle, content_type="application/fhir+json")
def fhir(client_id):
    """FHIR R4 Bundle (a collection): the Patient, a Practitioner per therapist, an
    Appointment per session, QuestionnaireResponse and total-score Observation per
    questionnaire, Flag per open risk alert; every reference resolves inside the Bundle."""
    client_for(client_id)
    rows = list(board("responses").find({"client_id": client_id}).sort("completed_at", 1))
    alerts = list(board("alerts").find({"client_id": client_id, "status": "open"}))
    sessions = list(board("sessions").find({"client_id": client_id}).sort("starts_at", 1))
    record_read("measures/fhir-export", client_id, action="export")
    return bundle(client_id, rows, alerts, sessions)


@blp.route("/clients/<client_id>/subject-access", methods=["GET"])
@requires("service")
@blp.response(200, PartOut)
def subject_access(client_id):
    """Measures' part of the client's subject access export (records' `GET
    /clients/{id}/export` gathers it): the questionnaires asked of them, every answer and
    score, the risk alerts and their acknowledgements, the course outcomes, and every
    measures event about them (never a form link's token)."""
    record_read("measures/subject-access", client_id, action="export")
    by_time = {"requests": "due_at", "responses": "completed_at", "alerts": "indicated_at"}
    held = {
        name: documents(board(name), {"client_id": client_id}, sort=by_time.get(name, "_id"))
        for name in ("requests", "responses", "alerts", "episodes")
    }
    return part("measures", client_id, held, events_about(context().store, client_id))
