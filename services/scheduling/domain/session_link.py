"""A client's own link to one booked session (issue 17, item 2): reception sends it, and the
client may cancel the session or move it to another free time of the same therapist on their
phone, within the practice's notice rules. One stream per link (`session-link-<id>`);
single purpose: one session, one change, and never after the session starts.

The notice rule is the one staff cancellation applies (diary.LATE_CANCELLATION, 24 hours,
the practice's cancellation policy): a cancellation inside it is still possible and is
recorded as the client's *late* cancellation, exactly as a staff cancellation "by client"
would be (billing then charges per its policy). Moving a session inside it is not offered:
a move there would escape the late-cancellation charge, so the client is asked to cancel or
call the practice. The change itself is the session decider's own `CancelSession` or
`RescheduleSession`, appended with this link's `SessionLinkUsed` in one transaction
(application/session_links.py); the token is a credential and is never in an event."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.domain import Conflict, NotFound
from shared.events import NewEvent

from . import diary
from .session import BOOKED, SessionState

LIFETIME = timedelta(days=60)  # at most; never beyond the session's start
CANCEL, RESCHEDULE = "cancel", "reschedule"


@dataclass(frozen=True)
class IssueSessionLink:
    link_id: str
    session: SessionState
    now: datetime


@dataclass(frozen=True)
class UseSessionLink:
    action: str  # CANCEL or RESCHEDULE
    session: SessionState  # the session as it stands now
    now: datetime
    starts_at: datetime | None = None  # the new time, for RESCHEDULE


@dataclass(frozen=True)
class SessionLinkState:
    status: str | None = None  # None, "issued", "used"
    facts: Mapping[str, Any] = field(default_factory=dict)

    def usable(self, now: datetime) -> bool:
        return self.status == "issued" and self.facts["expires_at"] > now


def inside_notice(session: SessionState, now: datetime) -> bool:
    """Whether a cancellation now would be late (the same test as domain/session._cancel)."""
    return session.facts["starts_at"] - now < diary.LATE_CANCELLATION


def may_move(session: SessionState, now: datetime) -> bool:
    return session.status == BOOKED and not inside_notice(session, now)


def _issue(state: SessionLinkState, cmd: IssueSessionLink) -> list[NewEvent]:
    if state.status is not None:
        raise Conflict("this link exists already")
    session = cmd.session
    if session.status is None:
        raise NotFound("no such session")
    if session.status != BOOKED:
        raise Conflict(f"the session is {session.status}", code=f"session_{session.status}")
    starts = session.facts["starts_at"]
    if starts <= cmd.now:
        raise Conflict("the session has started already", code="session_started")
    f = session.facts
    data = {
        "link_id": cmd.link_id,
        "session_id": f["session_id"],
        "client_id": f["client_id"],
        "therapist_id": f["therapist_id"],
        "starts_at": starts,
        "expires_at": min(cmd.now + LIFETIME, starts),
    }
    return [NewEvent("SessionLinkIssued", data)]


def _use(state: SessionLinkState, cmd: UseSessionLink) -> list[NewEvent]:
    if state.status is None:
        raise NotFound("no such link")
    session = cmd.session
    # a session changed since (moved or cancelled by staff) is not the one the link was for
    gone = (
        not state.usable(cmd.now)
        or session.status != BOOKED
        or session.facts["starts_at"] <= cmd.now
        or session.facts["starts_at"] != state.facts["starts_at"]
    )
    if gone:
        raise Conflict("this link has been used or has expired", code="link_gone")
    if cmd.action == RESCHEDULE and not may_move(session, cmd.now):
        raise Conflict(
            "the session is less than 24 hours away: it can be cancelled, not moved",
            code="inside_notice",
        )
    data = {
        "link_id": state.facts["link_id"],
        "session_id": state.facts["session_id"],
        "client_id": state.facts["client_id"],
        "action": cmd.action,
        "starts_at": cmd.starts_at if cmd.action == RESCHEDULE else None,
        "used_at": cmd.now,
    }
    return [NewEvent("SessionLinkUsed", data)]


DECIDERS: dict[type, Callable[[SessionLinkState, Any], list[NewEvent]]] = {
    IssueSessionLink: _issue,
    UseSessionLink: _use,
}
EVOLVERS: dict[str, Callable[[SessionLinkState, Mapping], SessionLinkState]] = {
    "SessionLinkIssued": lambda s, d: SessionLinkState("issued", dict(d)),
    "SessionLinkUsed": lambda s, d: SessionLinkState("used", {**s.facts, "used": dict(d)}),
}


class SessionLink:
    def initial_state(self) -> SessionLinkState:
        return SessionLinkState()

    def evolve(self, state: SessionLinkState, event) -> SessionLinkState:
        return EVOLVERS[event.type](state, event.data)

    def decide(self, state: SessionLinkState, command) -> list[NewEvent]:
        return DECIDERS[type(command)](state, command)


session_link = SessionLink()
