"""Reads of clients: the list and search, the record (as of any past moment), the event
history and the subject-access export. The writes (registration, corrections) are in
api/clients.py, on this blueprint: one resource, one group in the OpenAPI document."""

from __future__ import annotations

import re
from datetime import datetime

from flask_smorest import Blueprint
from pymongo import ASCENDING

from shared.audit import record_read, trail_for
from shared.auth import Forbidden, current_identity, requires
from shared.events import utcnow
from shared.subject_access import fetch_parts
from shared.subject_access import plain as plain_json
from shared.web import context

from ..application import application, enquiry_stream, own_caseload_only, sees_clinical
from ..domain.rules import query_keys
from ..projections import RecordTimeline
from ..schemas import problems
from ..schemas.clients import (
    AsOfArgs,
    ClientListArgs,
    ClientOut,
    ClientPageOut,
    ExportOut,
    HistoryOut,
)
from .enquiries import enquiry_view
from .views import event_view, full_view, record_view

blp = Blueprint(
    "clients",
    __name__,
    url_prefix="/clients",
    description="Clients of the practice and their clinical record",
)


@blp.route("", methods=["GET"])
@requires("admin", "therapist", "clinical_lead")
@problems(blp, 401, 403)
@blp.arguments(ClientListArgs, location="query")
@blp.response(200, ClientPageOut)
def list_clients(args):
    """Search clients by name (the starts of its words), phone number, e-mail address or
    NHS number (exact, in any usual spelling: spaces, dashes, +44); filter by therapist,
    phase, status (a therapist sees their own caseload; reception sees no phase)."""
    who = current_identity()
    if who.role == "therapist":
        own_caseload_only(who, args.get("therapist_id", who.therapist_id))
        args["therapist_id"] = who.therapist_id
    if "phase" in args and not sees_clinical(who):
        raise Forbidden("reception staff do not see clinical information (phase)")
    query: dict = {k: args[k] for k in ("therapist_id", "phase", "status") if k in args}
    query.update(_search(args.get("q") or ""))
    clients = application().summaries.reader("clients")
    page, per_page = args["page"], args["per_page"]
    docs = (
        clients.find(query)
        .sort([("family_name", ASCENDING), ("given_name", ASCENDING), ("_id", ASCENDING)])
        .skip((page - 1) * per_page)
        .limit(per_page)
    )
    items = [
        {
            "client_id": d["_id"],
            **{k: d.get(k) for k in ("given_name", "family_name", "therapist_id", "status")},
        }
        | ({"phase": d.get("phase")} if sees_clinical(who) else {})
        for d in docs
    ]
    return {
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": clients.count_documents(query),
    }


def _search(q: str) -> dict:
    """A name (every word the start of a name word) or a contact key, each an indexed path."""
    words = q.lower().split()
    if not words:
        return {}
    by_name = {"$and": [{"search_terms": {"$regex": f"^{re.escape(w)}"}} for w in words]}
    keys = query_keys(q)
    if not keys:
        return by_name
    return {"$or": [by_name, {"contact_keys": {"$in": keys}}]}


@blp.route("/<client_id>", methods=["GET"])
@requires("admin", "therapist", "clinical_lead", "service")
@problems(blp, 401, 403, 404)
@blp.arguments(AsOfArgs, location="query")
@blp.response(200, ClientOut)
def get_client(args, client_id):
    """The record, or the record as it was known at `as_of`. Reception and services get
    the contact view only."""
    app, who, as_of = application(), current_identity(), args.get("as_of")
    state = app.record(client_id, who, clinical=False, until=as_of)
    return record_view(app, state, who, as_of)


@blp.route("/<client_id>/history", methods=["GET"])
@requires("therapist", "clinical_lead")
@problems(blp, 401, 403, 404)
@blp.arguments(AsOfArgs, location="query")
@blp.response(200, HistoryOut)
def history(args, client_id):
    """Every event of the record in order (up to `as_of`), amendments and corrections
    included: nothing is edited in place."""
    app, as_of = application(), args.get("as_of")
    app.record(client_id, current_identity(), clinical=True)
    record_read("client_history", client_id)
    events = app.store.load(client_id, until=as_of)
    return {"client_id": client_id, "as_of": as_of, "events": [event_view(e) for e in events]}


@blp.route("/<client_id>/export", methods=["GET"])
@requires("clinical_lead")
@problems(blp, 401, 403, 404)
@blp.response(200, ExportOut)
def export(client_id):
    """Subject-access export (UK GDPR Art. 15): everything held about the client, from every
    service, in one download. Records' own part (the record, its events, the enquiry the
    client came from, the timeline, who read the record) and, under `services`, each other
    service's part, asked with a service token (shared.subject_access). A service that did
    not answer is named in `missing` and `complete` is false: never a partial export that
    looks whole. Sealed fields are opened; a disposed client's read "[disposed]"."""
    app = application()
    state = app.record(client_id, current_identity(), clinical=True)
    record_read("client_export", client_id, action="export")
    settings = context().settings
    timeline = context().projection(RecordTimeline()).reader("entries")
    parts, missing = fetch_parts(settings, client_id, OTHER_SERVICES)
    trail = trail_for(settings)  # read last: it lists the services' reads for this export
    return {
        "client_id": client_id,
        "exported_at": utcnow(),
        "exported_by": current_identity().sub,
        "complete": not missing,
        "missing": missing,
        "record": full_view(state, app.attendance(client_id)),
        "events": [event_view(e) for e in app.store.load(client_id)],
        "enquiry": _enquiry_of(app, client_id),
        "sessions": _without_ids(app.sessions(client_id)),
        "timeline": _without_ids(timeline.find({"client_id": client_id}).sort("at", 1)),
        "audit": _without_ids(trail.entries_between(client_id=client_id, limit=10_000)),
        "services": parts,
    }


# what the other services hold about a client (records gathers their parts for the export)
OTHER_SERVICES = ("scheduling", "measures", "notifications", "billing")


def _enquiry_of(app, client_id: str) -> dict | None:
    """The enquiry the client came from, if they got in touch first: its details and steps
    as its stream has them, and its events (one scan of the store: exports are rare)."""
    received = app.store.events.find_one(
        {"type": "EnquiryReceived", "data.client_id": client_id}, {"data.enquiry_id": 1}
    )
    if received is None:
        return None
    enquiry_id = received["data"]["enquiry_id"]
    view = enquiry_view(app.enquiry(enquiry_id))
    events = [event_view(e) for e in app.store.load(enquiry_stream(enquiry_id))]
    return {**plain_json(view), "events": plain_json(events)}


def _without_ids(docs) -> list[dict]:
    """Projection documents as plain JSON values (ISO datetimes, `id` for `_id`)."""

    def plain(value):
        return value.isoformat() if isinstance(value, datetime) else value

    return [{("id" if k == "_id" else k): plain(v) for k, v in d.items()} for d in docs]
