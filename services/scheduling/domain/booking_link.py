"""A booking link: reception offers a person some of a therapist's free times (an
assessment, usually to someone who has only enquired so far), and the person books one of
them on their phone. One stream per link (`booking-link-<id>`); single purpose: it books
once, and only a time it offered, before it expires. The booking itself is the session
decider's `BookSession`, appended in the same transaction with the same slot claims as a
staff booking (application/booking_links.py), so a time taken meanwhile is refused.

The link's token is a credential: it is never in an event (only its hash is stored, by the
application), and staff never see it; the notifications service fetches one per message."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain import Conflict, Invalid, NotFound
from shared.events import NewEvent

from .session import check_bookable
from .therapist import TherapistState

LIFETIME = timedelta(days=7)  # at most; never beyond the last time offered
MAX_SLOTS = 10


@dataclass(frozen=True)
class IssueBookingLink:
    link_id: str
    client_id: str  # the client, or the id reserved for an enquirer (records)
    therapist: TherapistState
    kind: str
    modality: str
    starts: tuple[datetime, ...]
    now: datetime
    room: str | None = None
    enquiry_id: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class UseBookingLink:
    session_id: str
    starts_at: datetime
    now: datetime


@dataclass(frozen=True)
class BookingLinkState:
    status: str | None = None  # None, "offered", "used"
    facts: Mapping[str, Any] = field(default_factory=dict)

    def usable(self, now: datetime) -> bool:
        return self.status == "offered" and self.facts["expires_at"] > now


def _issue(state: BookingLinkState, cmd: IssueBookingLink) -> list[NewEvent]:
    if state.status is not None:
        raise Conflict("this booking link exists already")
    starts = sorted(set(cmd.starts))
    if not 1 <= len(starts) <= MAX_SLOTS:
        raise Invalid(f"offer 1 to {MAX_SLOTS} different times", field="starts")
    for n, start in enumerate(cmd.starts):  # numbered as sent, so the error names the field
        try:
            check_bookable(cmd.therapist, cmd.modality, cmd.room, start, cmd.now)
        except Invalid as err:
            field = f"starts.{n}" if err.field == "starts_at" else err.field
            raise Invalid(err.detail, field=field) from None
        except Conflict as err:
            raise Invalid(f"{start.isoformat()}: {err.detail}", field=f"starts.{n}") from None
    latest = min(cmd.expires_at or cmd.now + LIFETIME, cmd.now + LIFETIME, starts[-1])
    if latest <= cmd.now:
        raise Invalid("the link would expire before it could be used", field="expires_at")
    data = {
        "link_id": cmd.link_id,
        "client_id": cmd.client_id,
        "enquiry_id": cmd.enquiry_id,
        "therapist_id": cmd.therapist.therapist_id,
        "kind": cmd.kind,
        "modality": cmd.modality,
        "room": cmd.room,
        "starts": starts,
        "expires_at": latest,
    }
    return [NewEvent("BookingLinkIssued", data)]


def _use(state: BookingLinkState, cmd: UseBookingLink) -> list[NewEvent]:
    if state.status is None:
        raise NotFound("no such booking link")
    if not state.usable(cmd.now):
        raise Conflict("this link has been used or has expired", code="link_gone")
    if cmd.starts_at not in state.facts["starts"]:
        raise Invalid("choose one of the times offered", field="starts_at")
    data = {
        "link_id": state.facts["link_id"],
        "client_id": state.facts["client_id"],
        "session_id": cmd.session_id,
        "starts_at": cmd.starts_at,
        "used_at": cmd.now,
    }
    return [NewEvent("BookingLinkUsed", data)]


DECIDERS: dict[type, Callable[[BookingLinkState, Any], list[NewEvent]]] = {
    IssueBookingLink: _issue,
    UseBookingLink: _use,
}
EVOLVERS: dict[str, Callable[[BookingLinkState, Mapping], BookingLinkState]] = {
    "BookingLinkIssued": lambda s, d: BookingLinkState("offered", dict(d)),
    "BookingLinkUsed": lambda s, d: BookingLinkState("used", {**s.facts, "used": dict(d)}),
}


class BookingLink:
    def initial_state(self) -> BookingLinkState:
        return BookingLinkState()

    def evolve(self, state: BookingLinkState, event) -> BookingLinkState:
        return EVOLVERS[event.type](state, event.data)

    def decide(self, state: BookingLinkState, command) -> list[NewEvent]:
        return DECIDERS[type(command)](state, command)


booking_link = BookingLink()
