"""Reads: therapists, a session, free slots, the diary, a client's sessions, utilisation and
the iCalendar feed. The blueprints are shared with the writes of the same resources
(api.py), so each is one group in the OpenAPI document.

The calendar feed's URL carries a secret token: a credential, so only its SHA-256 is stored
(architecture.md, "Secrets are not events") and a new token replaces the old one. A wrong
token answers 404 exactly like an unknown therapist, so the feed reveals nothing. Entries
carry client initials only (no surnames, no clinical detail), as calendar apps sync them
to third-party servers."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime, time, timedelta

from flask import Response
from flask_smorest import Blueprint
from icalendar import Calendar
from icalendar import Event as VEvent

from shared.audit import record_read
from shared.auth import current_identity, public, requires
from shared.domain import Invalid, NotFound
from shared.events import utcnow
from shared.subject_access import PartOut, documents, events_about, part, plain
from shared.web import context

from . import schemas as s
from .application import application, claims, own_diary
from .domain import diary
from .domain.session import SessionState
from .projections import Sessions, Therapists, directory

blp = Blueprint("scheduling", __name__, description="Therapists, sessions, courses and boosters")
views_blp = Blueprint("scheduling_views", __name__, description="Diary, slots and utilisation")
calendar_blp = Blueprint("calendar", __name__, description="iCalendar feed per therapist")
STAFF = ("admin", "therapist", "clinical_lead")
PAST, FUTURE = timedelta(days=90), timedelta(days=400)
LABELS = {"video": "Video", "telephone": "Telephone"}
BLUEPRINTS = [blp, views_blp, calendar_blp]


def _sessions():
    return context().projection(Sessions()).reader("sessions")


def _out(doc: dict) -> dict:
    return {**doc, "session_id": doc["_id"]}


def session_out(state: SessionState, who=None, app=None) -> dict:
    """A session for staff: the client's join link never (it goes to the client's own
    channels only); `video_link` is the caller's own link, for the session's therapist."""
    facts = {k: v for k, v in state.facts.items() if k not in ("video_room", "video_link")}
    link = (app or application()).therapist_link(state, who) if who is not None else None
    return {**facts, "status": state.status, "video_link": link}


def _names(client_ids) -> dict[str, dict]:
    clients = context().projection(directory()).reader("clients")
    return {c["_id"]: c for c in clients.find({"_id": {"$in": list(client_ids)}})}


def _full_name(client: dict) -> str | None:
    return " ".join(p for p in (client.get("given_name"), client.get("family_name")) if p) or None


def _between(therapist_id: str, first: date, last: date) -> list[dict]:
    start, end = diary.to_utc(first, time(0)), diary.to_utc(last + timedelta(days=1), time(0))
    query = {"therapist_id": therapist_id, "starts_at": {"$gte": start, "$lt": end}}
    return list(_sessions().find(query).sort("starts_at", 1))


@blp.route("/sessions/<session_id>", methods=["GET"])
@requires(*STAFF, "service")
@blp.response(200, s.SessionOut)
def get_session(session_id):
    """One session as the write side knows it now, with the client's name (from the client
    directory) so a page can say whose session it is."""
    state = application().visible_session(session_id, current_identity())
    client = _names([state.facts["client_id"]]).get(state.facts["client_id"]) or {}
    return {**session_out(state, current_identity()), "client_name": _full_name(client)}


@blp.route("/therapists", methods=["GET"])  # beside POST /therapists (api.py): one resource
@requires(*STAFF, "service")
@blp.response(200, s.TherapistOut(many=True))
def list_therapists():
    """Every bookable therapist with their hours."""
    docs = context().projection(Therapists()).reader("therapists").find().sort("name", 1)
    return [therapist_out(d) for d in docs]


def therapist_out(doc: dict) -> dict:
    """The store has no date type, so the projection keeps leave days as ISO strings; the
    response schema wants dates (a string there was a 500 for everyone: issue 13, defect 1)."""
    exceptions = [
        {
            **e,
            "start_date": date.fromisoformat(str(e["start_date"])[:10]),
            "end_date": date.fromisoformat(str(e["end_date"])[:10]),
        }
        for e in doc.get("exceptions") or []
    ]
    return {**doc, "therapist_id": doc["_id"], "exceptions": exceptions}


@views_blp.route("/slots", methods=["GET"])
@requires(*STAFF)
@views_blp.arguments(s.SlotsQuery, location="query")
@views_blp.response(200, s.SlotOut(many=True))
def slots(query):
    """Free 50-minute slots on the hour inside working hours, minus leave, booked sessions
    and (face-to-face) rooms in use."""
    app = application()
    therapist = app.therapist(query["therapist_id"])
    if not therapist.exists:
        raise NotFound(f"no therapist {query['therapist_id']}")
    if query["modality"] not in therapist.modalities:
        raise Invalid(
            f"{therapist.name} does not offer {query['modality']} sessions", field="modality"
        )
    rooms = []
    if query["modality"] == "face_to_face":
        rooms = [query["room"]] if query.get("room") else list(therapist.rooms)
        if any(r not in therapist.rooms for r in rooms):
            raise Invalid(f"{therapist.name} does not work in room {query['room']}", field="room")
    scope = f"therapist:{therapist.therapist_id}"
    start = diary.to_utc(query["from_"], time(0))
    end = diary.to_utc(query["to"] + timedelta(days=1), time(0))
    taken = claims.busy(app.claims, [scope] + [f"room:{r}" for r in rooms], start, end)
    now, out = app.clock(), []
    day = query["from_"]
    while day <= query["to"]:
        for slot in diary.hourly_starts(therapist.availability, day):
            free_rooms = [r for r in rooms if taken.isdisjoint(diary.scope_keys(f"room:{r}", slot))]
            if (
                slot > now
                and taken.isdisjoint(diary.scope_keys(scope, slot))
                and (free_rooms or not rooms)
            ):
                out.append(
                    {"starts_at": slot, "ends_at": slot + diary.SESSION, "rooms": free_rooms}
                )
        day += timedelta(days=1)
    return out


@views_blp.route("/therapists/<therapist_id>/diary", methods=["GET"])
@requires(*STAFF)
@views_blp.arguments(s.DiaryQuery, location="query")
@views_blp.response(200, s.DiaryOut)
def therapist_diary(query, therapist_id):
    """A day or a (Monday-Sunday) week of the therapist's sessions, cancelled ones included."""
    own_diary(current_identity(), therapist_id)
    first = query["date"] if query["view"] == "day" else diary.week_of(query["date"])[0]
    last = first if query["view"] == "day" else first + timedelta(days=6)
    docs = _between(therapist_id, first, last)
    clients = _names({d["client_id"] for d in docs})
    entries = []
    for d in docs:
        c = clients.get(d["client_id"]) or {}
        entries.append({**_out(d), "client_name": _full_name(c), "client_status": c.get("status")})
    return {"therapist_id": therapist_id, "from_": first, "to": last, "sessions": entries}


@views_blp.route("/clients/<client_id>/sessions", methods=["GET"])
@requires(*STAFF, "service")
@views_blp.response(200, s.SessionOut(many=True))
def client_sessions(client_id):
    """Every session of one client, in time order."""
    client = application().client(client_id, current_identity())
    docs = list(_sessions().find({"client_id": client_id}).sort("starts_at", 1))
    if client is None and not docs:
        raise NotFound(f"no client {client_id}")
    return [_out(d) for d in docs]


@views_blp.route("/therapists/<therapist_id>/utilisation", methods=["GET"])
@requires(*STAFF)
@views_blp.arguments(s.RangeQuery, location="query")
@views_blp.response(200, s.UtilisationOut)
def utilisation(query, therapist_id):
    """Booked against available hours, did-not-attend rate and late-cancellation rate."""
    own_diary(current_identity(), therapist_id)
    therapist = application().therapist(therapist_id)
    if not therapist.exists:
        raise NotFound(f"no therapist {therapist_id}")
    return {
        "therapist_id": therapist_id,
        "from_": query["from_"],
        "to": query["to"],
        **measure(
            therapist.availability,
            _between(therapist_id, query["from_"], query["to"]),
            query["from_"],
            query["to"],
        ),
    }


def measure(availability, docs: list[dict], first: date, last: date) -> dict:
    available = timedelta()
    day = first
    while day <= last:
        available += sum((we - ws for ws, we in diary.windows(availability, day)), timedelta())
        day += timedelta(days=1)
    count = lambda status: sum(1 for d in docs if d["status"] == status)  # noqa: E731
    held = [d for d in docs if d["status"] != "cancelled"]
    attended, missed, cancelled = count("attended"), count("missed"), count("cancelled")
    late = sum(1 for d in docs if d["status"] == "cancelled" and d.get("late"))
    hours = lambda delta: round(delta.total_seconds() / 3600, 2)  # noqa: E731
    booked = diary.SESSION * len(held)
    return {
        "available_hours": hours(available),
        "booked_hours": hours(booked),
        "utilisation": round(booked / available, 3) if available else None,
        "sessions": len(docs),
        "attended": attended,
        "missed": missed,
        "dna_rate": round(missed / (attended + missed), 3) if attended + missed else None,
        "cancellations": cancelled,
        "late_cancellations": late,
        "late_cancellation_rate": round(late / len(docs), 3) if docs else None,
    }


# -- the calendar feed --------------------------------------------------------------------------
def calendar_tokens():
    return context().db["calendar_tokens"]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@calendar_blp.route("/therapists/<therapist_id>/calendar.ics", methods=["GET"])
@public
@calendar_blp.arguments(s.CalendarQuery, location="query")
@calendar_blp.doc(security=[])
@calendar_blp.response(200, content_type="text/calendar")
def feed(query, therapist_id):
    """The therapist's sessions as iCalendar (UTC times, stable UIDs, cancelled marked)."""
    stored = calendar_tokens().find_one({"_id": therapist_id})
    if stored is None or not hmac.compare_digest(stored["sha256"], token_digest(query["token"])):
        raise NotFound("not found")
    now = utcnow()
    docs = list(
        _sessions()
        .find(
            {"therapist_id": therapist_id, "starts_at": {"$gte": now - PAST, "$lt": now + FUTURE}}
        )
        .sort("starts_at", 1)
    )
    body = ical_feed(docs, _names({d["client_id"] for d in docs}), now)
    return Response(body, mimetype="text/calendar")


def initials(client: dict | None) -> str:
    if not client:
        return "client"
    parts = [client.get("given_name") or "", client.get("family_name") or ""]
    return "".join(p.strip()[:1].upper() for p in parts if p.strip()) or "client"


def ical_feed(docs: list[dict], clients: dict, now: datetime) -> bytes:
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


# -- booking links (the writes and the person's side are in api.py) -----------------------
links_blp = Blueprint(
    "booking_links",
    __name__,
    description="Times offered to a person by link; they book one on their phone",
)
BLUEPRINTS.append(links_blp)


def booking_link_out(state) -> dict:
    used = state.facts.get("used") or {}
    return {**state.facts, "status": state.status, "session_id": used.get("session_id")}


@links_blp.route("/booking-links/<link_id>", methods=["GET"])
@requires("admin", "clinical_lead")
@links_blp.response(200, s.BookingLinkOut)
def get_booking_link(link_id):
    """A link as reception sees it: the times offered, until when, and whether it was used
    (never its token)."""
    from .application.booking_links import BookingLinks

    return booking_link_out(BookingLinks(application()).state(link_id))


# -- subject access (records gathers every service's part into the export) ---------------
@blp.route("/clients/<client_id>/subject-access", methods=["GET"])
@requires("service")
@blp.response(200, PartOut)
def subject_access(client_id):
    """Scheduling's part of the client's subject access export (records' `GET
    /clients/{id}/export` gathers it): their sessions with each one's video room (never the
    join link: it carries the room's token), the booking links offered to them (never the
    link's token) and every scheduling event about them."""
    from .application.booking_links import BookingLinks

    record_read("scheduling/subject-access", client_id, action="export")
    events = events_about(context().store, client_id)
    rooms = {
        e["data"]["session_id"]: e["data"].get("video_room")
        for e in events
        if e["type"] in ("SessionBooked", "SessionRescheduled")
    }
    sessions = [
        {**d, "session_id": d["id"], "video_room": rooms.get(d["id"])}
        for d in documents(_sessions(), {"client_id": client_id}, sort="starts_at")
    ]
    links = BookingLinks(application())
    offered = [
        plain(booking_link_out(links.state(e["data"]["link_id"])))
        for e in events
        if e["type"] == "BookingLinkIssued"
    ]
    held = {"sessions": sessions, "booking_links": offered}
    return part("scheduling", client_id, held, events)


# -- the client's own link to one session (writes and the client's side in api.py) --------
session_links_blp = Blueprint(
    "session_links",
    __name__,
    description="A client's own link to cancel or move one session within the notice rules",
)
BLUEPRINTS.append(session_links_blp)
