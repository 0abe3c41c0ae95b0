"""Staff reads: the instruments (as the registry states them: the portal draws its charts
from this), a client's instrument set, risk alerts, and questionnaire request status for
reception (no answers or scores). Their blueprint carries the staff writes of the same
resources too (api/staff.py), so each resource is one group in the OpenAPI document."""

from __future__ import annotations

from flask_smorest import Blueprint

from shared.audit import record_read
from shared.auth import current_identity, requires
from shared.events import utcnow

from ..domain import DEFAULT_SET, INSTRUMENTS, Instrument
from ..schemas import (
    AlertList,
    AlertQuery,
    InstrumentList,
    InstrumentSetOut,
    RequestList,
    RequestQuery,
)
from .access import application, board, client_for, clients, links

blp = Blueprint(
    "measures",
    __name__,
    description="Instruments, questionnaires and their requests, scores and risk alerts",
)
STAFF = ("admin", "therapist", "clinical_lead")
CLINICIANS = ("therapist", "clinical_lead")


def describe(instrument: Instrument) -> dict:
    """The instrument as the API shows it."""
    return {
        "code": instrument.code,
        "title": instrument.title,
        "source": instrument.source,
        "period": instrument.period,
        "preamble": instrument.preamble,
        "items": [
            {
                "number": n,
                "text": text,
                "not_applicable": instrument.optional_items.get(n),
                "reversed": n in instrument.reversed_items,
                "risk": n in instrument.risk_items,
            }
            for n, text in enumerate(instrument.items, start=1)
        ],
        "options": [{"value": v, "label": label} for v, label in enumerate(instrument.options)],
        "item_range": [0, instrument.item_max],
        "total_range": [0, instrument.total_max],
        "bands": bands(instrument),
        "max_missing": instrument.max_missing,
        "caseness": instrument.caseness,
        "caseness_label": instrument.caseness_label if instrument.caseness is not None else None,
        "loinc_total": instrument.loinc.code if instrument.loinc else None,
    }


def bands(instrument: Instrument) -> list[dict]:
    return [{"from": b.minimum, "above": b.above, "label": b.label} for b in instrument.bands]


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
        "instruments": list(application().instruments_for(client_id)),
    }


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
    links_by_request = links().latest([r["_id"] for r in found])
    out = []
    for r in found:
        link = links_by_request.get(r["_id"], {})
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
