"""Clinical reads of one client: responses, trajectory, outcomes, FHIR export. Each is
clinical content: admin gets 403, a therapist only their own clients, and every read is
recorded in the audit trail."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from shared.audit import record_read
from shared.auth import requires

from .access import board, client_for
from .fhir import bundle
from .instruments import INSTRUMENTS
from .schemas import ScoreOut

blp = Blueprint("client_measures", __name__, description="A client's scores and outcomes")
CLINICIANS = ("therapist", "clinical_lead")


class ResponseRow(Schema):
    response_id = fields.String()
    request_id = fields.String(allow_none=True)
    session_id = fields.String(allow_none=True)
    session_number = fields.Integer(allow_none=True)
    episode_id = fields.String()
    source = fields.String()
    completed_at = fields.DateTime()
    scores = fields.List(fields.Nested(ScoreOut))


class ResponseRows(Schema):
    client_id = fields.String()
    responses = fields.List(fields.Nested(ResponseRow))


class Point(Schema):
    at = fields.DateTime()
    session_id = fields.String(allow_none=True)
    session_number = fields.Integer(allow_none=True)
    total = fields.Float(allow_none=True)
    band = fields.String(allow_none=True)
    prorated = fields.Boolean(allow_none=True)


class Series(Schema):
    instrument = fields.String()
    caseness = fields.Float(allow_none=True, metadata={"description": "clinical threshold line"})
    total_range = fields.List(fields.Integer())
    bands = fields.List(fields.Dict())
    points = fields.List(fields.Nested(Point))


class Trajectory(Schema):
    client_id = fields.String()
    series = fields.List(fields.Nested(Series))


class Pair(Schema):
    first = fields.Float(allow_none=True)
    last = fields.Float(allow_none=True)
    change = fields.Float(allow_none=True)


class Outcome(Schema):
    episode_id = fields.String()
    course_id = fields.String(allow_none=True)
    therapist_id = fields.String()
    phq9 = fields.Nested(Pair)
    gad7 = fields.Nested(Pair)
    attended_sessions = fields.Integer()
    finished_treatment = fields.Boolean()
    caseness_at_start = fields.Boolean(allow_none=True)
    recovered = fields.Boolean(allow_none=True)
    reliable_improvement = fields.Boolean(allow_none=True)
    reliable_deterioration = fields.Boolean(allow_none=True)
    reliable_recovery = fields.Boolean(allow_none=True)
    first_measured_at = fields.DateTime(allow_none=True)
    last_measured_at = fields.DateTime(allow_none=True)


class Outcomes(Schema):
    client_id = fields.String()
    outcomes = fields.List(fields.Nested(Outcome))


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
                    "bands": [
                        {"from": b.minimum, "above": b.above, "label": b.label}
                        for b in instrument.bands
                    ],
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


class FhirBundle(Schema):
    resourceType = fields.String()
    type = fields.String()
    total = fields.Integer()
    entry = fields.List(fields.Dict())


@blp.route("/clients/<client_id>/fhir", methods=["GET"])
@requires(*CLINICIANS)
@blp.response(200, FhirBundle, content_type="application/fhir+json")
def fhir(client_id):
    """FHIR R4 Bundle: QuestionnaireResponse and total-score Observation per questionnaire,
    Flag per open risk alert."""
    client_for(client_id)
    rows = list(board("responses").find({"client_id": client_id}).sort("completed_at", 1))
    alerts = list(board("alerts").find({"client_id": client_id, "status": "open"}))
    record_read("measures/fhir-export", client_id, action="export")
    return bundle(client_id, rows, alerts)
