"""Read routes: therapists, free slots, the diary, a client's sessions and utilisation."""

from __future__ import annotations

from datetime import date, time, timedelta

from flask_smorest import Blueprint

from shared.auth import current_identity, requires
from shared.directory import check_client_access
from shared.domain import Invalid, NotFound
from shared.web import context

from . import claims, diary
from . import schemas as s
from .api import STAFF, own_diary, scheduling
from .projections import Sessions, Therapists, directory

blp = Blueprint("scheduling_views", __name__, description="Diary, slots and utilisation")


def _sessions():
    return context().projection(Sessions()).reader("sessions")


def _out(doc: dict) -> dict:
    return {**doc, "session_id": doc["_id"]}


def _between(therapist_id: str, first: date, last: date) -> list[dict]:
    start, end = diary.to_utc(first, time(0)), diary.to_utc(last + timedelta(days=1), time(0))
    query = {"therapist_id": therapist_id, "starts_at": {"$gte": start, "$lt": end}}
    return list(_sessions().find(query).sort("starts_at", 1))


@blp.route("/therapists", methods=["GET"])
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


@blp.route("/slots", methods=["GET"])
@requires(*STAFF)
@blp.arguments(s.SlotsQuery, location="query")
@blp.response(200, s.SlotOut(many=True))
def slots(query):
    """Free 50-minute slots on the hour inside working hours, minus leave, booked sessions
    and (face-to-face) rooms in use."""
    app = scheduling()
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


@blp.route("/therapists/<therapist_id>/diary", methods=["GET"])
@requires(*STAFF)
@blp.arguments(s.DiaryQuery, location="query")
@blp.response(200, s.DiaryOut)
def therapist_diary(query, therapist_id):
    """A day or a (Monday-Sunday) week of the therapist's sessions, cancelled ones included."""
    own_diary(therapist_id)
    first = query["date"] if query["view"] == "day" else diary.week_of(query["date"])[0]
    last = first if query["view"] == "day" else first + timedelta(days=6)
    docs = _between(therapist_id, first, last)
    ids = list({d["client_id"] for d in docs})
    clients = {
        c["_id"]: c
        for c in context().projection(directory()).reader("clients").find({"_id": {"$in": ids}})
    }
    entries = []
    for d in docs:
        c = clients.get(d["client_id"]) or {}
        name = " ".join(p for p in (c.get("given_name"), c.get("family_name")) if p) or None
        entries.append({**_out(d), "client_name": name, "client_status": c.get("status")})
    return {"therapist_id": therapist_id, "from_": first, "to": last, "sessions": entries}


@blp.route("/clients/<client_id>/sessions", methods=["GET"])
@requires(*STAFF, "service")
@blp.response(200, s.SessionOut(many=True))
def client_sessions(client_id):
    """Every session of one client, in time order."""
    client = context().projection(directory()).reader("clients").find_one({"_id": client_id})
    check_client_access(current_identity(), client)
    docs = list(_sessions().find({"client_id": client_id}).sort("starts_at", 1))
    if client is None and not docs:
        raise NotFound(f"no client {client_id}")
    return [_out(d) for d in docs]


@blp.route("/therapists/<therapist_id>/utilisation", methods=["GET"])
@requires(*STAFF)
@blp.arguments(s.RangeQuery, location="query")
@blp.response(200, s.UtilisationOut)
def utilisation(query, therapist_id):
    """Booked against available hours, did-not-attend rate and late-cancellation rate."""
    own_diary(therapist_id)
    therapist = scheduling().therapist(therapist_id)
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
