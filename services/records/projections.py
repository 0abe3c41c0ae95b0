"""Read models of the records service, built from its own events and scheduling's.

- `client_summaries`: one document per client (names, therapist, status, phase, open tasks)
  for the client list and the caseloads; scheduling's sessions and attendance beside it, in
  their own collections, because scheduling's and records' topics are not ordered with
  respect to each other (an attended session may arrive before the client's registration).
- `record_timeline`: one line per event about a client, from both services, without personal
  free text (summaries name what happened, not what was said).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pymongo import ASCENDING, IndexModel

from shared.projections import HANDLED, Projection

from .domain import RECORD_EVENT_TYPES
from .domain.course import COURSE_LENGTH
from .domain.enquiry import step_time
from .domain.rules import contact_keys

CONTACT_FIELDS = ("email", "phone", "nhs_number")


def search_terms(given_name: str, family_name: str) -> list[str]:
    """Lower-case words of the name; the list search matches their starts (indexed)."""
    return sorted({w for w in f"{given_name} {family_name}".lower().split() if w})


def _contact(details, known: dict | None = None) -> dict:
    """The contact details a client is searched by, as normalised keys per field (a
    correction changes some fields only); `contact_keys` holds them all, indexed, so the
    search is an exact, indexed match."""
    by_field = dict(known or {})
    for name in CONTACT_FIELDS:
        if name in details:
            found = contact_keys(**{name: details[name]})
            by_field[name] = found[0] if found else None
    return {"contact": by_field, "contact_keys": sorted(k for k in by_field.values() if k)}


class ClientSummaries(Projection):
    service = "records"
    name = "client_summaries"
    batched = True  # the batch's writes combined and sent together (shared.projections)
    sources = ("records", "scheduling")
    collections = {
        "clients": [
            IndexModel([("therapist_id", ASCENDING), ("status", ASCENDING)]),
            IndexModel("status"),
            IndexModel("phase"),
            IndexModel("search_terms"),
            IndexModel("contact_keys"),
            IndexModel([("family_name", ASCENDING), ("given_name", ASCENDING)]),
        ],
        "sessions": [
            IndexModel([("client_id", ASCENDING), ("status", ASCENDING), ("starts_at", ASCENDING)])
        ],
        "attendance": [IndexModel("client_id")],
    }

    # -- records ---------------------------------------------------------------------------
    def on_ClientRegistered(self, event, view):
        d = event.data
        view["clients"].update_one(
            {"_id": d["client_id"]},
            {
                "$set": {
                    "given_name": d["given_name"],
                    "family_name": d["family_name"],
                    "search_terms": search_terms(d["given_name"], d["family_name"]),
                    **_contact(d),
                    "therapist_id": d["therapist_id"],
                    "status": "active",
                    "phase": None,
                    "registered_at": event.recorded_at,
                },
                "$setOnInsert": {"open_tasks": 0},
            },
            upsert=True,
        )

    def on_ClientDetailsCorrected(self, event, view):
        d = event.data
        changes = {k: d[k] for k in ("given_name", "family_name", "therapist_id") if k in d}
        if not changes and not any(k in d for k in CONTACT_FIELDS):
            return
        current = view["clients"].find_one({"_id": d["client_id"]}) or {}
        names = {**current, **changes}
        changes["search_terms"] = search_terms(
            names.get("given_name", ""), names.get("family_name", "")
        )
        changes.update(_contact(d, current.get("contact")))
        view["clients"].update_one({"_id": d["client_id"]}, {"$set": changes}, upsert=True)

    def on_PhaseChanged(self, event, view):
        view["clients"].update_one(
            {"_id": event.data["client_id"]},
            {"$set": {"phase": event.data["to_phase"]}},
            upsert=True,
        )

    def on_TaskAssigned(self, event, view):
        view["clients"].update_one(
            {"_id": event.data["client_id"]}, {"$inc": {"open_tasks": 1}}, upsert=True
        )

    def on_TaskCompleted(self, event, view):
        view["clients"].update_one(
            {"_id": event.data["client_id"]}, {"$inc": {"open_tasks": -1}}, upsert=True
        )

    def on_ClientDischarged(self, event, view):
        view["clients"].update_one(
            {"_id": event.data["client_id"]},
            {"$set": {"status": "discharged", "discharged_at": event.data["discharged_at"]}},
            upsert=True,
        )

    # -- scheduling ------------------------------------------------------------------------
    def _session(self, event, view, **changes):
        d = event.data
        view["sessions"].update_one(
            {"_id": d["session_id"]},
            {
                "$set": {
                    "client_id": d["client_id"],
                    "therapist_id": d["therapist_id"],
                    "starts_at": d["starts_at"],
                    "ends_at": d["ends_at"],
                    **changes,
                }
            },
            upsert=True,
        )

    def on_SessionBooked(self, event, view):
        self._session(
            event, view, status="booked", kind=event.data["kind"], number=event.data.get("number")
        )

    def on_SessionRescheduled(self, event, view):
        self._session(event, view, status="booked")

    def on_SessionCancelled(self, event, view):
        self._session(event, view, status="cancelled")

    def on_SessionMissed(self, event, view):
        self._session(event, view, status="missed", kind=event.data["kind"])

    def on_SessionAttended(self, event, view):
        d = event.data
        self._session(event, view, status="attended", kind=d["kind"])
        # recorded_at lets the record "as of" a date count only what was known then
        view["attendance"].update_one(
            {"_id": d["session_id"]},
            {
                "$set": {
                    "client_id": d["client_id"],
                    "kind": d["kind"],
                    "starts_at": d["starts_at"],
                    "recorded_at": event.recorded_at,
                }
            },
            upsert=True,
        )


def _note_summary(d) -> str:
    if d.get("amends"):
        return f"Note {d['amends']} amended by note {d['note_id']}"
    return f"Note {d['note_id']} added (session {d.get('session_id') or 'none'})"


def _corrected_summary(d) -> str:
    return (
        f"Details corrected: {', '.join(sorted(k for k in d if k not in ('client_id', 'reason')))}"
    )


# one line per records event type, from its data (no clinical free text)
_RECORDS_SUMMARIES: dict[str, Callable[[Mapping], str]] = {
    "ClientRegistered": lambda d: (
        f"Registered (referral: {d['referral_source']}; therapist {d['therapist_id']})"
    ),
    "ClientDetailsCorrected": _corrected_summary,
    "AssessmentRecorded": lambda d: (
        f"Assessment recorded (conditions: {', '.join(d['conditions'])})"
    ),
    "FormulationRecorded": lambda d: (
        f"Formulation revision {d['revision']} ({', '.join(d['problem_areas'])})"
    ),
    "PhaseChanged": lambda d: f"Phase {d.get('from_phase') or 'none'} -> {d['to_phase']}",
    "NoteRecorded": _note_summary,
    "TaskAssigned": lambda d: f"Task {d['task_id']} assigned",
    "TaskCompleted": lambda d: f"Task {d['task_id']} completed",
    "TaskReviewed": lambda d: f"Task {d['task_id']} reviewed",
    "ClientDischarged": lambda d: "Discharged",
    # the outcome is clinical (sealed): the timeline says only that the course ended and how
    "CourseCompleted": lambda d: (
        "Course completed ("
        + ("session 16 attended" if d["ended"] == "final_session" else "ended by the therapist")
        + f", {d['sessions_attended']} sessions attended)"
    ),
    "CourseOutcomeRecorded": lambda d: "Course outcome recorded",
    "DiaryEntryWritten": lambda d: (
        "Diary entry written" + (f" (task {d['task_id']})" if d.get("task_id") else "")
    ),
}


def _records_summary(event) -> str:
    summary = _RECORDS_SUMMARIES.get(event.type)
    return summary(event.data) if summary else event.type


def _scheduling_summary(event) -> str | None:
    d = event.data
    when = d["starts_at"].isoformat() if "starts_at" in d else ""
    return {
        "SessionBooked": lambda: (
            f"Session {d.get('number') or ''} booked for {when} "
            f"({d.get('kind')}, {d.get('modality')})".replace("  ", " ")
        ),
        "SessionRescheduled": lambda: (
            f"Session moved from {d['previous_starts_at'].isoformat()} to {when}"
        ),
        "SessionCancelled": lambda: (
            f"Session at {when} cancelled by {d['by']}" + (" (late)" if d["late"] else "")
        ),
        "SessionAttended": lambda: f"Attended the {d['kind']} session at {when}",
        "SessionMissed": lambda: f"Missed the {d['kind']} session at {when}",
    }.get(event.type, lambda: None)()


class RecordTimeline(Projection):
    service = "records"
    name = "record_timeline"
    batched = True  # the batch's writes combined and sent together (shared.projections)
    sources = ("records", "scheduling")
    collections = {"entries": [IndexModel([("client_id", ASCENDING), ("at", ASCENDING)])]}

    def handle(self, event, view) -> None:
        client_id = event.data.get("client_id")
        if not client_id:
            return  # therapist and availability events concern no client
        if event.type.startswith("Session"):
            summary, source = _scheduling_summary(event), "scheduling"
        elif event.type in RECORD_EVENT_TYPES:
            summary, source = _records_summary(event), "records"
        else:
            summary = None
        if summary is None:
            return
        view["entries"].update_one(
            {"_id": event.event_id},
            {
                "$set": {
                    "client_id": client_id,
                    "at": event.recorded_at,
                    "type": event.type,
                    "source": source,
                    "actor": event.actor.id,
                    "summary": summary,
                }
            },
            upsert=True,
        )


class EnquiryInbox(Projection):
    """Reception's inbox and the waiting list: one document per enquiry, its details (opened
    from the sealed fields; rebuilt after a disposal, when they read "[disposed]") and where
    it stands. The sessions booked for the reserved client id are in `client_summaries`."""

    service = "records"
    name = "enquiry_inbox"
    batched = True
    sources = ("records",)
    collections = {
        "enquiries": [
            IndexModel([("status", ASCENDING), ("received_at", ASCENDING)]),
            IndexModel("received_at"),
            IndexModel([("status", ASCENDING), ("priority_rank", ASCENDING)]),
            # the retention sweep's path (workers.EnquirySweeper)
            IndexModel([("status", ASCENDING), ("last_step_at", ASCENDING)]),
        ]
    }
    _RANKS = {"urgent": 0, "soon": 1, "routine": 2}

    @staticmethod
    def _last_step(event) -> dict:
        """When the enquiry last moved, as the domain counts it: its retention runs from then."""
        return {"last_step_at": step_time(event.data) or event.recorded_at}

    def _set(self, event, view, **fields):
        view["enquiries"].update_one(
            {"_id": event.data["enquiry_id"]}, {"$set": fields | self._last_step(event)}
        )

    def on_EnquiryReceived(self, event, view):
        d = event.data
        fields = {k: d.get(k) for k in d if k != "enquiry_id"} | {"status": "received"}
        view["enquiries"].update_one(
            {"_id": d["enquiry_id"]},
            {"$set": fields | self._last_step(event), "$setOnInsert": {"attempts": []}},
            upsert=True,
        )

    def on_EnquiryContactAttempted(self, event, view):
        d = event.data
        attempt = {k: d.get(k) for k in ("channel", "outcome", "note", "by", "attempted_at")}
        view["enquiries"].update_one(
            {"_id": d["enquiry_id"]},
            {"$push": {"attempts": attempt}, "$set": self._last_step(event)},
        )

    def on_AssessmentOffered(self, event, view):
        d = event.data
        self._set(
            event, view, status="offered", offered_to=d["therapist_id"], offered_at=d["offered_at"]
        )

    def on_EnquiryWaitlisted(self, event, view):
        d = event.data
        self._set(
            event,
            view,
            status="waiting",
            priority=d["priority"],
            priority_rank=self._RANKS[d["priority"]],
            added_at=d["added_at"],
        )

    def on_EnquiryDeclined(self, event, view):
        d = event.data
        self._set(
            event,
            view,
            status="declined",
            reason=d.get("reason"),
            signposted_to=d.get("signposted_to"),
            declined_at=d["declined_at"],
        )

    def on_EnquiryConverted(self, event, view):
        self._set(event, view, status="registered", registered_at=event.data["registered_at"])

    def on_EnquiryDisposed(self, event, view):
        self._set(event, view, status="disposed", disposed_at=event.data["disposed_at"])


class CourseEnds(Projection):
    """The work queue of `workers.CourseCompleter`: one job per attended final session of a
    course (domain/course.py, COURSE_LENGTH). A rebuilt queue re-queues old ones harmlessly:
    the record refuses a session that already completed a course."""

    service, name, sources = "records", "course_ends", ("scheduling",)
    batched = True
    # it reads the diary's busy topic for attendances: under load the others go half a
    # second at a time, an attendance at once (Projection.urgent, issue 14)
    linger, urgent = 0.5, HANDLED
    collections = {"course_ends": [IndexModel([("status", ASCENDING)], name="status")]}

    def on_SessionAttended(self, event, view):
        d = event.data
        if d["kind"] != "treatment" or d.get("number") != COURSE_LENGTH:
            return
        view["course_ends"].update_one(
            {"_id": d["session_id"]},
            {
                "$setOnInsert": {
                    "client_id": d["client_id"],
                    "attended_at": event.recorded_at,
                    "status": "pending",
                }
            },
            upsert=True,
        )


def projections() -> list[Projection]:
    return [ClientSummaries(), RecordTimeline(), EnquiryInbox(), CourseEnds()]
