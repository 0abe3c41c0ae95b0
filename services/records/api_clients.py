"""Clients: registration, corrections, the record (as of any past moment), the list, the
event history and the subject-access export."""

from __future__ import annotations

import re
from datetime import datetime

from flask.views import MethodView
from flask_smorest import Blueprint
from pymongo import ASCENDING

from shared.audit import record_read, trail_for
from shared.auth import Forbidden, current_identity, requires
from shared.events import new_id, utcnow
from shared.web import context, request_metadata

from .access import authorised, own_caseload_only, records, sees_clinical
from .commands import CorrectDetails, RegisterClient
from .projections import RecordTimeline
from .rules import query_keys
from .schemas import (
    AsOfArgs,
    ClientCorrectionIn,
    ClientIn,
    ClientListArgs,
    ClientOut,
    ClientPageOut,
    ExportOut,
    HistoryOut,
    problems,
)
from .views import contact_view, event_view, full_view

blp = Blueprint(
    "clients",
    __name__,
    url_prefix="/clients",
    description="Clients of the practice and their clinical record",
)


def _view(state, client_id: str, as_of=None) -> dict:
    """Full record for the client's therapist and the lead (audited), else the contact view."""
    if not sees_clinical():
        return contact_view(state, as_of)
    record_read("client_record", client_id)
    return full_view(state, records().attendance(client_id, as_of), as_of)


@blp.route("")
class Clients(MethodView):
    @requires("admin", "therapist", "clinical_lead")
    @problems(blp, 401, 403)
    @blp.arguments(ClientIn)
    @blp.response(201, ClientOut)
    def post(self, body):
        """Register a client from an enquiry or a referral (`ClientRegistered`)."""
        own_caseload_only(body["therapist_id"])
        client_id = new_id()
        state = records().execute(
            client_id, RegisterClient(client_id=client_id, **body), request_metadata()
        )
        return _view(state, client_id), 201, {"Location": f"/clients/{client_id}"}

    @requires("admin", "therapist", "clinical_lead")
    @problems(blp, 401, 403)
    @blp.arguments(ClientListArgs, location="query")
    @blp.response(200, ClientPageOut)
    def get(self, args):
        """Search clients by name (the starts of its words), phone number, e-mail address or
        NHS number (exact, in any usual spelling: spaces, dashes, +44); filter by therapist,
        phase, status (a therapist sees their own caseload; reception sees no phase)."""
        identity = current_identity()
        if identity.role == "therapist":
            own_caseload_only(args.get("therapist_id", identity.therapist_id))
            args["therapist_id"] = identity.therapist_id
        if "phase" in args and not sees_clinical():
            raise Forbidden("reception staff do not see clinical information (phase)")
        query: dict = {k: args[k] for k in ("therapist_id", "phase", "status") if k in args}
        query.update(_search(args.get("q") or ""))
        clients = records().summaries.reader("clients")
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
            | ({"phase": d.get("phase")} if sees_clinical() else {})
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


@blp.route("/<client_id>")
class Client(MethodView):
    @requires("admin", "therapist", "clinical_lead", "service")
    @problems(blp, 401, 403, 404)
    @blp.arguments(AsOfArgs, location="query")
    @blp.response(200, ClientOut)
    def get(self, args, client_id):
        """The record, or the record as it was known at `as_of`. Reception and services get
        the contact view only."""
        as_of = args.get("as_of")
        state = authorised(client_id, clinical=False, until=as_of)
        return _view(state, client_id, as_of)

    @requires("admin", "therapist", "clinical_lead")
    @problems(blp, 401, 403, 404, 409)
    @blp.arguments(ClientCorrectionIn)
    @blp.response(200, ClientOut)
    def patch(self, body, client_id):
        """Correct details with a reason (`ClientDetailsCorrected`); reassigning the
        therapist is a correction (reception or the clinical lead only)."""
        authorised(client_id, clinical=False)
        reason = body.pop("reason")
        if "therapist_id" in body and current_identity().role == "therapist":
            raise Forbidden("reception or the clinical lead reassign clients")
        state = records().execute(
            client_id, CorrectDetails(client_id, reason, body), request_metadata()
        )
        return _view(state, client_id)


@blp.route("/<client_id>/history")
class History(MethodView):
    @requires("therapist", "clinical_lead")
    @problems(blp, 401, 403, 404)
    @blp.arguments(AsOfArgs, location="query")
    @blp.response(200, HistoryOut)
    def get(self, args, client_id):
        """Every event of the record in order (up to `as_of`), amendments and corrections
        included: nothing is edited in place."""
        as_of = args.get("as_of")
        authorised(client_id, clinical=True)
        record_read("client_history", client_id)
        events = records().store.load(client_id, until=as_of)
        return {"client_id": client_id, "as_of": as_of, "events": [event_view(e) for e in events]}


@blp.route("/<client_id>/export")
class Export(MethodView):
    @requires("clinical_lead")
    @problems(blp, 401, 403, 404)
    @blp.response(200, ExportOut)
    def get(self, client_id):
        """Subject-access export: everything held about the client (UK GDPR Art. 15)."""
        state = authorised(client_id, clinical=True)
        record_read("client_export", client_id, action="export")
        r = records()
        timeline = context().projection(RecordTimeline()).reader("entries")
        trail = trail_for(context().settings)
        return {
            "client_id": client_id,
            "exported_at": utcnow(),
            "exported_by": current_identity().sub,
            "record": full_view(state, r.attendance(client_id)),
            "events": [event_view(e) for e in r.store.load(client_id)],
            "sessions": _without_ids(r.sessions(client_id)),
            "timeline": _without_ids(timeline.find({"client_id": client_id}).sort("at", 1)),
            "audit": _without_ids(trail.entries_between(client_id=client_id, limit=10_000)),
        }


def _without_ids(docs) -> list[dict]:
    """Projection documents as plain JSON values (ISO datetimes, `id` for `_id`)."""

    def plain(value):
        return value.isoformat() if isinstance(value, datetime) else value

    return [{("id" if k == "_id" else k): plain(v) for k, v in d.items()} for d in docs]
