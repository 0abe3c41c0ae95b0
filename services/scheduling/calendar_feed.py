"""The iCalendar feed a therapist subscribes to from their phone or mail client.

The feed URL carries a secret token: a credential, so only its SHA-256 is stored
(architecture.md, "Secrets are not events") and a new token replaces the old one. A wrong
token answers 404 exactly like an unknown therapist, so the feed reveals nothing. Entries
carry client initials only — no surnames, no clinical detail — as calendar apps sync them
to third-party servers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from flask import Response, url_for
from flask_smorest import Blueprint
from icalendar import Calendar
from icalendar import Event as VEvent

from shared.auth import public, requires
from shared.domain import NotFound
from shared.events import utcnow
from shared.web import context

from . import schemas as s
from .api import own_diary, scheduling
from .projections import Sessions, directory

blp = Blueprint("calendar", __name__, description="iCalendar feed per therapist")
PAST, FUTURE = timedelta(days=90), timedelta(days=400)
LABELS = {"video": "Video", "telephone": "Telephone"}


def _tokens():
    return context().db["calendar_tokens"]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@blp.route("/therapists/<therapist_id>/calendar-token", methods=["POST"])
@requires("therapist")
@blp.response(201, s.CalendarTokenOut)
def new_token(therapist_id):
    """Issue the feed's secret token (shown once); any earlier token stops working. Only
    the therapist themselves: a token is a credential to their diary, and minting one
    revokes the subscription they have (reception could do both: issue 15, #16)."""
    own_diary(therapist_id)
    if not scheduling().therapist(therapist_id).exists:
        raise NotFound(f"no therapist {therapist_id}")
    token = secrets.token_urlsafe(32)
    _tokens().update_one(
        {"_id": therapist_id},
        {"$set": {"sha256": _digest(token), "issued_at": utcnow()}},
        upsert=True,
    )
    path = url_for("calendar.feed", therapist_id=therapist_id)
    return {"token": token, "url": f"{path}?token={token}"}, 201, {"Location": path}


@blp.route("/therapists/<therapist_id>/calendar.ics", methods=["GET"])
@public
@blp.arguments(s.CalendarQuery, location="query")
@blp.doc(security=[])
@blp.response(200, content_type="text/calendar")
def feed(query, therapist_id):
    """The therapist's sessions as iCalendar (UTC times, stable UIDs, cancelled marked)."""
    stored = _tokens().find_one({"_id": therapist_id})
    if stored is None or not hmac.compare_digest(stored["sha256"], _digest(query["token"])):
        raise NotFound("not found")
    now = utcnow()
    docs = list(
        context()
        .projection(Sessions())
        .reader("sessions")
        .find(
            {"therapist_id": therapist_id, "starts_at": {"$gte": now - PAST, "$lt": now + FUTURE}}
        )
        .sort("starts_at", 1)
    )
    ids = list({d["client_id"] for d in docs})
    clients = {
        c["_id"]: c
        for c in context().projection(directory()).reader("clients").find({"_id": {"$in": ids}})
    }
    body = build(docs, clients, now)
    return Response(body, mimetype="text/calendar")


def initials(client: dict | None) -> str:
    if not client:
        return "client"
    parts = [client.get("given_name") or "", client.get("family_name") or ""]
    return "".join(p.strip()[:1].upper() for p in parts if p.strip()) or "client"


def build(docs: list[dict], clients: dict, now: datetime) -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//Rapport//Scheduling//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "Rapport sessions")
    for d in docs:
        entry = VEvent()
        entry.add("uid", f"{d['_id']}@scheduling.rapport")
        entry.add("dtstamp", now)
        entry.add("dtstart", d["starts_at"])
        entry.add("dtend", d["ends_at"])
        entry.add(
            "summary", f"{d['kind'].capitalize()} session – {initials(clients.get(d['client_id']))}"
        )
        entry.add(
            "location",
            f"Room {d['room']}" if d.get("room") else LABELS.get(d["modality"], d["modality"]),
        )
        entry.add("status", "CANCELLED" if d["status"] == "cancelled" else "CONFIRMED")
        # calendar clients replace an entry only when its sequence grows
        entry.add("sequence", len(d.get("moves") or []) + (1 if d["status"] == "cancelled" else 0))
        cal.add_component(entry)
    return cal.to_ical()
