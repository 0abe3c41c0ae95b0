"""A therapist's caseload as measures sees it: each client's latest score on each
instrument and their open risk alerts. The portal puts this beside records' caseload
(phase, sessions attended, next appointment)."""

from __future__ import annotations

from flask_smorest import Blueprint

from shared.audit import record_read
from shared.auth import Forbidden, current_identity, requires

from ..schemas import CaseloadMeasures
from .access import board, clients

blp = Blueprint(
    "caseload_measures", __name__, description="A therapist's caseload: latest scores and open risk"
)


@blp.route("/therapists/<therapist_id>/latest-scores", methods=["GET"])
@requires("therapist", "clinical_lead")
@blp.response(200, CaseloadMeasures)
def latest_scores(therapist_id):
    """For each client on the therapist's caseload: the latest total on each instrument and
    the open risk alerts (a therapist may see only their own caseload)."""
    identity = current_identity()
    if identity.role == "therapist" and identity.therapist_id != therapist_id:
        raise Forbidden("you may see only your own caseload")
    ids = [c["_id"] for c in clients().find({"therapist_id": therapist_id}, {"_id": 1})]
    latest: dict[str, dict[str, dict]] = {i: {} for i in ids}
    for p in board("points").find({"client_id": {"$in": ids}}).sort("at", 1):
        latest[p["client_id"]][p["instrument"]] = p  # in time order: the last one stays
    alerts: dict[str, list] = {i: [] for i in ids}
    for a in (
        board("alerts").find({"client_id": {"$in": ids}, "status": "open"}).sort("indicated_at", -1)
    ):
        alerts[a["client_id"]].append({"alert_id": a["_id"], **a})
    record_read("measures/caseload", None)
    return {
        "therapist_id": therapist_id,
        "clients": [
            {
                "client_id": i,
                "latest": sorted(latest[i].values(), key=lambda p: p["instrument"]),
                "open_alerts": alerts[i],
            }
            for i in ids
        ],
    }
