"""Reads of enquiries: reception's inbox, one enquiry, the waiting list and the practice's
enquiries report. The writes (a new enquiry, each step) are in api/enquiries.py, on this
blueprint. Reception (admin) and the clinical lead read them; an enquiry is not yet anyone's
client, so no therapist reaches it."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta

from flask import current_app
from flask_smorest import Blueprint
from pymongo import ASCENDING, DESCENDING

from shared.auth import requires
from shared.web import context

from ..application import application
from ..domain.enquiry import EnquiryState, retention_until, weeks_waiting
from ..projections import EnquiryInbox
from ..schemas import problems
from ..schemas.enquiries import (
    EnquiryListArgs,
    EnquiryListOut,
    EnquiryOut,
    EnquiryReportOut,
    ReportArgs,
)

blp = Blueprint(
    "enquiries",
    __name__,
    description="Enquiries from people who got in touch, the waiting list, and the report",
)
READERS = ("admin", "clinical_lead")
LIST_LIMIT = 500


def _today():
    return current_app.config["RECORDS_CLOCK"]().date()


def inbox():
    return context().projection(EnquiryInbox()).reader("enquiries")


def enquiry_view(state: EnquiryState) -> dict:
    """One enquiry from its stream (always current: a step just taken shows at once)."""
    waiting = state.waiting or {}
    added_at = waiting.get("added_at")
    return {
        **state.details,
        "status": state.status,
        "received_at": state.received_at,
        "attempts": list(state.attempts),
        "priority": waiting.get("priority"),
        "added_at": added_at,
        "weeks_waiting": weeks_waiting(added_at, _today()) if added_at else None,
        "offered_to": state.offered_to,
        "retention_until": retention_until(state) if state.status != "registered" else None,
        "assessment_at": _first_sessions([state.client_id]).get((state.client_id, "assessment"))
        if state.client_id
        else None,
    }


def _listed(doc: dict) -> dict:
    added_at = doc.get("added_at")
    return {
        **doc,
        "enquiry_id": doc["_id"],
        "weeks_waiting": weeks_waiting(added_at, _today()) if added_at else None,
    }


@blp.route("/enquiries", methods=["GET"])
@requires(*READERS)
@problems(blp, 401, 403)
@blp.arguments(EnquiryListArgs, location="query")
@blp.response(200, EnquiryListOut)
def list_enquiries(args):
    """Reception's inbox, newest first (`status` to filter)."""
    query = {"status": args["status"]} if "status" in args else {}
    docs = inbox().find(query).sort("received_at", DESCENDING).limit(LIST_LIMIT)
    return {"enquiries": [_listed(d) for d in docs]}


@blp.route("/enquiries/<enquiry_id>", methods=["GET"])
@requires(*READERS)
@problems(blp, 401, 403, 404)
@blp.response(200, EnquiryOut)
def get_enquiry(enquiry_id):
    """One enquiry with its contact attempts and where it stands."""
    return enquiry_view(application().enquiry(enquiry_id))


@blp.route("/waiting-list", methods=["GET"])
@requires(*READERS)
@problems(blp, 401, 403)
@blp.response(200, EnquiryListOut)
def waiting_list():
    """Who is waiting: most pressing priority first, then longest waiting; weeks waiting
    count from the date first added."""
    docs = (
        inbox()
        .find({"status": "waiting"})
        .sort([("priority_rank", ASCENDING), ("added_at", ASCENDING)])
        .limit(LIST_LIMIT)
    )
    return {"enquiries": [_listed(d) for d in docs]}


def _days(pairs: Iterable[tuple[datetime, datetime]]) -> dict:
    days = [round((later - first).total_seconds() / 86400, 1) for first, later in pairs]
    return {
        "count": len(days),
        "median_days": statistics.median(days) if days else None,
        "mean_days": round(statistics.fmean(days), 1) if days else None,
    }


def _first_sessions(client_ids: list[str]) -> dict[tuple[str, str], datetime]:
    """(client id, kind) -> the first session booked (not cancelled) of that kind."""
    sessions = application().summaries.reader("sessions")
    first: dict[tuple[str, str], datetime] = {}
    for s in sessions.find(
        {"client_id": {"$in": client_ids}, "status": {"$ne": "cancelled"}},
        {"client_id": 1, "kind": 1, "starts_at": 1},
    ):
        key = (s["client_id"], s.get("kind"))
        if key not in first or s["starts_at"] < first[key]:
            first[key] = s["starts_at"]
    return first


@blp.route("/reports/enquiries", methods=["GET"])
@requires(*READERS)
@problems(blp, 401, 403)
@blp.arguments(ReportArgs, location="query")
@blp.response(200, EnquiryReportOut)
def enquiries_report(args):
    """Enquiries received between `start` and `end` (days, inclusive), how many became
    clients, and the days from enquiry to the first assessment and the first treatment
    session booked for them (booked by link or by reception)."""
    start, end = args.get("start"), args.get("end")
    query: dict = {}
    if start or end:
        query["received_at"] = {}
        if start:
            query["received_at"]["$gte"] = datetime.combine(start, time(), UTC)
        if end:
            query["received_at"]["$lt"] = datetime.combine(end + timedelta(days=1), time(), UTC)
    docs = list(inbox().find(query, {"status": 1, "client_id": 1, "received_at": 1}))
    by_status: dict[str, int] = {}
    for d in docs:
        by_status[d["status"]] = by_status.get(d["status"], 0) + 1
    first = _first_sessions([d["client_id"] for d in docs])

    def reached(kind: str):
        for d in docs:
            at = first.get((d["client_id"], kind))
            if at is not None:
                yield _utc(d["received_at"]), _utc(at)

    converted = by_status.get("registered", 0)
    return {
        "start": start,
        "end": end,
        "enquiries": len(docs),
        "by_status": by_status,
        "converted": converted,
        "conversion_rate": round(converted / len(docs), 4) if docs else None,
        "waiting_now": inbox().count_documents({"status": "waiting"}),
        "to_assessment": _days(reached("assessment")),
        "to_first_treatment": _days(reached("treatment")),
    }


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
