"""Read models for staff: caseloads, a client's timeline, and the audit trail for the
clinical lead (tamper-evident: shared.audit's hash chain is verified on every view)."""

from __future__ import annotations

import csv
import io

from flask import Response
from flask_smorest import Blueprint
from pymongo import ASCENDING

from shared.audit import FIELDS as AUDIT_FIELDS
from shared.audit import record_read, trail_for
from shared.auth import current_identity, requires
from shared.events import utcnow
from shared.web import context

from ..application import application, own_caseload_only
from ..projections import RecordTimeline
from ..schemas import problems
from ..schemas.reports import AuditArgs, AuditOut, CaseloadArgs, CaseloadOut, TimelineOut

blp = Blueprint("reports", __name__, description="Caseloads, timelines and the audit trail")
AUDIT_COLUMNS = (*AUDIT_FIELDS, "prev_hash", "hash")


def _next_session(sessions, client_id: str) -> dict | None:
    doc = sessions.find_one(
        {"client_id": client_id, "status": "booked", "starts_at": {"$gte": utcnow()}},
        sort=[("starts_at", ASCENDING)],
    )
    if doc is None:
        return None
    return {
        "session_id": doc["_id"],
        "starts_at": doc["starts_at"].isoformat(),
        "ends_at": doc["ends_at"].isoformat(),
        "kind": doc.get("kind"),
    }


@blp.route("/therapists/<therapist_id>/caseload", methods=["GET"])
@requires("therapist", "clinical_lead")
@problems(blp, 401, 403)
@blp.arguments(CaseloadArgs, location="query")
@blp.response(200, CaseloadOut)
def caseload(args, therapist_id):
    """The therapist's clients: phase, sessions attended (and the phase that suggests),
    next booked session, open tasks."""
    own_caseload_only(current_identity(), therapist_id)
    r = application()
    query = {"therapist_id": therapist_id}
    if not args["include_discharged"]:
        query["status"] = "active"
    sessions = r.summaries.reader("sessions")
    clients = []
    for doc in (
        r.summaries.reader("clients")
        .find(query)
        .sort([("family_name", ASCENDING), ("given_name", ASCENDING)])
    ):
        clients.append(
            {
                "client_id": doc["_id"],
                "given_name": doc.get("given_name"),
                "family_name": doc.get("family_name"),
                "status": doc.get("status"),
                "phase": doc.get("phase"),
                **r.attendance(doc["_id"]),
                "next_session": _next_session(sessions, doc["_id"]),
                "open_tasks": doc.get("open_tasks", 0),
            }
        )
    return {"therapist_id": therapist_id, "clients": clients}


@blp.route("/clients/<client_id>/timeline", methods=["GET"])
@requires("therapist", "clinical_lead")
@problems(blp, 401, 403, 404)
@blp.response(200, TimelineOut)
def timeline(client_id):
    """The record and the diary in one line per event (the `record_timeline` projection)."""
    application().record(client_id, current_identity(), clinical=True)
    record_read("client_timeline", client_id)
    entries = context().projection(RecordTimeline()).reader("entries")
    docs = entries.find({"client_id": client_id}).sort([("at", ASCENDING), ("_id", ASCENDING)])
    return {
        "client_id": client_id,
        "entries": [
            {
                "event_id": d["_id"],
                **{k: d.get(k) for k in ("at", "type", "source", "actor", "summary")},
            }
            for d in docs
        ],
    }


def _audit_entries(args) -> tuple[list[dict], bool, str]:
    trail = trail_for(context().settings)
    trail.ensure_indexes()
    # not filed under the client: the lead's look at the trail is not a read of the record
    wanted = f"?client_id={args['client_id']}" if args.get("client_id") else ""
    record_read("audit_trail" + wanted)
    entries = trail.entries_between(
        args.get("since"), args.get("until"), args.get("client_id"), limit=args["limit"]
    )
    intact, message = trail.verify()
    return entries, intact, message


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection)."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@blp.route("/audit", methods=["GET"])
@requires("clinical_lead")
@problems(blp, 401, 403)
@blp.arguments(AuditArgs, location="query")
@blp.response(200, AuditOut)
def audit(args):
    """Who read what, when (filters since/until/client_id), with the chain verified."""
    entries, intact, message = _audit_entries(args)
    return {"chain_intact": intact, "chain_message": message, "entries": entries}


@blp.route("/audit/export", methods=["GET"])
@requires("clinical_lead")
@problems(blp, 401, 403)
@blp.arguments(AuditArgs, location="query")
@blp.response(200, description="CSV, one audit entry a row", content_type="text/csv")
def audit_export(args):
    """The same entries as CSV; the X-Audit-Chain header says whether the chain held."""
    entries, intact, message = _audit_entries(args)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=AUDIT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for entry in entries:
        writer.writerow({k: _cell(v) for k, v in entry.items()})
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=audit.csv"
    response.headers["X-Audit-Chain"] = ("intact: " if intact else "BROKEN: ") + message
    return response
