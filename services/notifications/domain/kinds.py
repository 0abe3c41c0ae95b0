"""The kinds of message, each stated once: one `Kind` entry in `KINDS` names its wording
(templates/<template>.txt), whether reception may see it, whether it is re-checked against
the appointment before it goes, and which events plan it (a pure function of `Facts`).
Everything else reads this table: the planner plans a kind on the events it names, the
dispatcher renders its template, the API validates and documents `kind` from it.

The appointment notices (confirmation, rescheduled, cancelled) and reminders name no
events here: the planner's session handlers plan them, because they also void or move
what an earlier fact planned (projections.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from . import plans
from .plans import Contact


@dataclass(frozen=True)
class Facts:
    """What a kind is planned from: the event's data, how the client may be reached, their
    therapist, the practice's zone, and `now`, the event's own time (a projection never
    reads the clock, so a rebuild plans what the live projection planned)."""

    data: dict
    contact: Contact
    therapist_id: str | None
    tz: ZoneInfo
    now: datetime


Plan = Callable[[Facts], list[dict]]


@dataclass(frozen=True)
class Kind:
    name: str
    template: str  # templates/<template>.txt: subject, email and sms (or inbox) blocks
    planned_on: Mapping[str, Plan] = field(default_factory=dict)  # event type -> plan
    clinical: bool = False  # reception (admin) never sees it: clinical information
    session_bound: bool = False  # the dispatcher checks the appointment still stands
    to_client: bool = True  # to the client's own channels: planned once the client is known


def _questionnaire_link(f: Facts) -> list[dict]:
    return plans.questionnaire_link(f.data, f.contact, f.tz, f.now)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("confirmation", "confirmation", session_bound=True),
        Kind(
            "course_summary",
            "course_summary",
            {"CourseBooked": lambda f: plans.course_summary(f.data, f.contact, f.tz, f.now)},
        ),
        Kind("rescheduled", "rescheduled", session_bound=True),
        Kind("cancelled", "cancelled"),
        Kind("reminder", "reminder", session_bound=True),
        Kind(
            "questionnaire_link",
            "questionnaire_link",
            {
                "QuestionnaireRequested": _questionnaire_link,
                "QuestionnaireResent": _questionnaire_link,
            },
        ),
        Kind(
            "task_reminder",
            "task_reminder",
            {
                "TaskAssigned": lambda f: plans.task_reminder(
                    f.data, f.therapist_id, f.contact, f.tz, f.now
                )
            },
        ),
        Kind(
            "booster_invitation",
            "booster_invitation",
            {"BoostersPlanned": lambda f: plans.booster_invitation(f.data, f.contact, f.tz, f.now)},
        ),
        Kind(
            "risk_alert",
            "risk_alert",
            {"RiskIndicated": lambda f: plans.risk_alert(f.data, f.now)},
            clinical=True,
            to_client=False,  # to staff, at once: it never waits for the client's record
        ),
        # offered times go to someone who enquired, before they are a client; the planner's
        # on_BookingLinkIssued plans it, as it needs how that person asked to be reached
        Kind("booking_link", "booking_link", to_client=False),
        # the confirmation of a time booked by that link, to the same contact, while the
        # person is not registered yet: planned by the planner's enquirer handlers
        Kind("booked_by_link", "booked_by_link", session_bound=True, to_client=False),
        # the client's own link to cancel or move one session (scheduling's session links);
        # a session moved or cancelled before it goes has made the link useless: voided
        Kind(
            "session_link",
            "session_link",
            {"SessionLinkIssued": lambda f: plans.session_link(f.data, f.contact, f.tz, f.now)},
            session_bound=True,
        ),
        # the client is told their care has ended: planned by the planner's
        # on_ClientDischarged, which also voids what was still planned for them
        Kind("care_ended", "care_ended"),
        # an issued invoice, with its PDF (fetched from billing at send time), to whoever
        # pays: planned by the planner's on_InvoiceIssued, as a funder is not the client
        Kind("invoice", "invoice", to_client=False),
    )
}


def planned_on(event_type: str) -> list[Kind]:
    """The kinds an event plans, read from the registry now (entries may be added)."""
    return [k for k in KINDS.values() if event_type in k.planned_on]


def waits_for_client(event_type: str) -> bool:
    """Whether a kind planned on this event goes to the client (so needs their record)."""
    return any(k.to_client for k in planned_on(event_type))


def clinical_kinds() -> list[str]:
    return [k.name for k in KINDS.values() if k.clinical]


def session_bound(kind: str) -> bool:
    found = KINDS.get(kind)
    return bool(found and found.session_bound)
