"""Read models of scheduling, each rebuildable from the log:
- `sessions`: one document per session (diary, a client's sessions, utilisation, calendar);
- `therapists`: who can be booked, with their hours;
- `discharges`: records' ClientDischarged events waiting for their future sessions to be
  cancelled (the work queue of `workers.DischargeCanceller`);
- the client directory (shared.directory) for names and status."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from shared.directory import ClientDirectory
from shared.projections import HANDLED, Projection

SERVICE = "scheduling"


class Sessions(Projection):
    service, name, sources = SERVICE, "sessions", (SERVICE,)
    batched = True  # the batch's writes combined and sent together (shared.projections)
    collections = {
        "sessions": [
            IndexModel(
                [("therapist_id", ASCENDING), ("starts_at", ASCENDING)], name="therapist_time"
            ),
            IndexModel([("client_id", ASCENDING), ("starts_at", ASCENDING)], name="client_time"),
        ]
    }

    def on_SessionBooked(self, event, view):
        d = event.data
        view["sessions"].update_one(
            {"_id": d["session_id"]},
            {
                "$set": {
                    **{
                        k: d.get(k)
                        for k in (
                            "client_id",
                            "therapist_id",
                            "starts_at",
                            "ends_at",
                            "kind",
                            "modality",
                            "room",
                            "course_id",
                            "number",
                        )
                    },
                    "status": "booked",
                    "booked_at": event.occurred_at,
                    "late": False,
                }
            },
            upsert=True,
        )

    def on_SessionRescheduled(self, event, view):
        d = event.data
        view["sessions"].update_one(
            {"_id": d["session_id"]},
            {
                "$set": {k: d.get(k) for k in ("starts_at", "ends_at", "modality", "room")},
                "$push": {
                    "moves": {
                        "from": d["previous_starts_at"],
                        "to": d["starts_at"],
                        "at": event.occurred_at,
                    }
                },
            },
        )

    def on_SessionCancelled(self, event, view):
        d = event.data
        view["sessions"].update_one(
            {"_id": d["session_id"]},
            {
                "$set": {
                    "status": "cancelled",
                    "cancelled_by": d["by"],
                    "late": d["late"],
                    "cancelled_at": event.occurred_at,
                }
            },
        )

    def on_SessionAttended(self, event, view):
        view["sessions"].update_one(
            {"_id": event.data["session_id"]}, {"$set": {"status": "attended"}}
        )

    def on_SessionMissed(self, event, view):
        view["sessions"].update_one(
            {"_id": event.data["session_id"]}, {"$set": {"status": "missed"}}
        )


class Therapists(Projection):
    service, name, sources = SERVICE, "therapists", (SERVICE,)
    batched = True  # the batch's writes combined and sent together (shared.projections)
    # it reads the diary's busy topic for two types: under load the sessions' events it
    # ignores go a quarter second at a time, its own at once (Projection.urgent, issue 14)
    linger, urgent = 0.25, HANDLED
    collections = {"therapists": [IndexModel([("name", ASCENDING)], name="name")]}

    def on_TherapistRegistered(self, event, view):
        d = event.data
        view["therapists"].update_one(
            {"_id": d["therapist_id"]},
            {
                "$set": {k: d.get(k) for k in ("name", "email", "phone", "modalities", "rooms")},
                "$setOnInsert": {"weekly_hours": [], "exceptions": []},
            },
            upsert=True,
        )

    def on_AvailabilitySet(self, event, view):
        d = event.data
        exceptions = [
            {**e, "start_date": e["start_date"].isoformat(), "end_date": e["end_date"].isoformat()}
            for e in d["exceptions"]
        ]
        view["therapists"].update_one(
            {"_id": d["therapist_id"]},
            {
                "$set": {
                    "weekly_hours": [dict(h) for h in d["weekly_hours"]],
                    "exceptions": exceptions,
                }
            },
        )


class Discharges(Projection):
    service, name, sources = SERVICE, "discharges", ("records",)
    batched = True  # the batch's writes combined and sent together (shared.projections)
    collections = {"discharges": [IndexModel([("status", ASCENDING)], name="status")]}

    def on_ClientDischarged(self, event, view):
        # one job per discharge event (a client may return and be discharged again);
        # $setOnInsert: a replayed discharge never re-opens finished work
        view["discharges"].update_one(
            {"_id": event.event_id},
            {
                "$setOnInsert": {
                    "client_id": event.data["client_id"],
                    "discharged_at": event.data["discharged_at"],
                    "cancel_boosters": bool(event.data.get("cancel_boosters")),
                    "status": "pending",
                }
            },
            upsert=True,
        )


def directory() -> ClientDirectory:
    return ClientDirectory(SERVICE)


def all_projections() -> list[Projection]:
    return [Sessions(), Therapists(), Discharges(), directory()]
