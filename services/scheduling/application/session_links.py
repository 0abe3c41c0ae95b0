"""A client's own link to one session (domain/session_link.py): issuing it, minting its
tokens for the messages that carry it, opening it from a token, and cancelling or moving the
session through it. A change appends the link's `SessionLinkUsed` and the session's
`SessionCancelled` or `SessionRescheduled` in one transaction with the session's slot
claims (claims.py) exactly as a staff change does: a time taken meanwhile is refused (409
`slot_taken`), and the link's stream version makes it change the session once. Only
hashes of the tokens are stored (architecture.md: secrets are not events)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from shared.application import Outcome
from shared.auth import Identity
from shared.domain import Conflict, Invalid, NotFound
from shared.events import Event, new_id
from shared.eventstore import ConcurrencyError, Metadata, StreamAppend

from ..domain import diary
from ..domain.session import CancelSession, RescheduleSession, SessionState, time_problem
from ..domain.session_link import (
    CANCEL,
    RESCHEDULE,
    IssueSessionLink,
    SessionLinkState,
    UseSessionLink,
    inside_notice,
    may_move,
    session_link,
)
from . import Application, claims, session_stream
from .booking_links import TokenLinks, token_hash

TOKENS = "session_link_tokens"
ATTEMPTS = 5
AROUND = timedelta(days=7)  # other times offered: the week either side of the session's own
MAX_TIMES = 80
CLIENT_REASON = "cancelled by the client with their own link"


def link_stream(link_id: str) -> str:
    return f"session-link-{link_id}"


class SessionLinks(TokenLinks):
    def __init__(self, app: Application):
        super().__init__(app, session_link, TOKENS)

    def issue(self, session_id: str, who: Identity, meta: Metadata) -> Outcome:
        """A link for one booked session, by someone who may change it (own diary)."""
        session = self.app.visible_session(session_id, who)
        command = IssueSessionLink(new_id(), session, self.app.clock())
        return self.links.run(link_stream(command.link_id), command, meta)

    def mint(self, link_id: str) -> tuple[str, datetime]:
        """A fresh token for one message carrying the link; 404 once it cannot be used."""
        state, _ = self.links.state(link_stream(link_id))
        if not state.usable(self.app.clock()):
            raise NotFound("this link has been used or has expired")
        token = secrets.token_urlsafe(32)
        expires_at = state.facts["expires_at"]
        self.tokens.insert_one(
            {"_id": token_hash(token), "link_id": link_id, "expires_at": expires_at}
        )
        return token, expires_at

    def open(self, token: str) -> tuple[SessionLinkState, int, SessionState, int]:
        """The link a token opens and its session, while the link can still be used for
        that session as it was sent; anything else (unknown, used, expired, the session
        moved or cancelled since) is the same 404, so a guessed token tells nothing."""
        gone = NotFound("this link is not valid any more")
        if not token or len(token) > 100:
            raise gone
        found = self.tokens.find_one({"_id": token_hash(token)}, {"link_id": 1})
        if found is None:
            raise gone
        link, version = self.links.state(link_stream(found["link_id"]))
        session, session_version = self.app.session(link.facts["session_id"])
        now = self.app.clock()
        if not link.usable(now) or session.status != "booked":
            raise gone
        if session.facts["starts_at"] != link.facts["starts_at"]:
            raise gone
        return link, version, session, session_version

    def offer(self, token: str) -> dict:
        """What the client's page shows: the session, whether cancelling now is late, and
        the other free times of the same therapist it may move to (none inside notice)."""
        _link, _, session, _ = self.open(token)
        now, f = self.app.clock(), session.facts
        movable = may_move(session, now)
        return {
            **{k: f.get(k) for k in ("session_id", "starts_at", "ends_at", "kind", "modality")},
            "room": f.get("room"),
            "therapist_name": self.app.therapist(f["therapist_id"]).name,
            "late": inside_notice(session, now),
            "can_move": movable,
            "free": self.free_times(session) if movable else [],
        }

    def _candidates(self, session: SessionState) -> list[datetime]:
        """The therapist's working slot starts in the week either side of the session,
        outside the notice period, with no leave (whether they are free is the claims')."""
        f, now = session.facts, self.app.clock()
        therapist = self.app.therapist(f["therapist_id"])
        first = diary.local(max(now + diary.LATE_CANCELLATION, f["starts_at"] - AROUND)).date()
        last = diary.local(f["starts_at"] + AROUND).date()
        out, day = [], first
        while day <= last:
            for start in diary.hourly_starts(therapist.availability, day):
                ok = start - now >= diary.LATE_CANCELLATION and start != f["starts_at"]
                if ok and time_problem(therapist, start, now) is None:
                    out.append(start)
            day += timedelta(days=1)
        return out

    def free_times(self, session: SessionState) -> list[datetime]:
        f = session.facts
        candidates = self._candidates(session)
        if not candidates:
            return []
        scopes = [f"therapist:{f['therapist_id']}", f"client:{f['client_id']}"]
        scopes += [f"room:{f['room']}"] if f.get("room") else []
        own = {d["_id"] for d in self.app.claims.find({"session_id": f["session_id"]}, {"_id": 1})}
        busy = claims.busy(self.app.claims, scopes, candidates[0], candidates[-1]) - own
        free = [
            s
            for s in candidates
            if busy.isdisjoint(
                diary.claim_keys(
                    s, therapist_id=f["therapist_id"], client_id=f["client_id"], room=f.get("room")
                )
            )
        ]
        return free[:MAX_TIMES]

    def cancel(self, token: str, meta: Metadata) -> Event:
        """Cancel by the client: late inside the notice period, as staff would record it."""

        def decide(session: SessionState, now: datetime):
            return self.app.session_decider.decide(
                session, CancelSession("client", CLIENT_REASON, now)
            )

        return self._change(token, CANCEL, None, decide, meta)

    def reschedule(self, token: str, starts_at: datetime, meta: Metadata) -> Event:
        """Move to another free time of the same therapist (422 for a time never offered,
        409 `slot_taken` when it went meanwhile)."""

        def decide(session: SessionState, now: datetime):
            if starts_at not in self._candidates(session):
                raise Invalid("choose one of the times shown", field="starts_at")
            status, rooms = self.app.client_facts(session.facts["client_id"])
            command = RescheduleSession(
                starts_at=starts_at,
                therapist=self.app.therapist(session.facts["therapist_id"]),
                client_status=status,
                now=now,
                reason="moved by the client with their own link",
                rooms=rooms,
            )
            return self.app.session_decider.decide(session, command)

        return self._change(token, RESCHEDULE, starts_at, decide, meta)

    def _change(self, token, action, starts_at, decide, meta: Metadata) -> Event:
        for _ in range(ATTEMPTS):
            link, version, session, session_version = self.open(token)
            now = self.app.clock()
            used = session_link.decide(link, UseSessionLink(action, session, now, starts_at))
            changed = decide(session, now)
            sid = link.facts["session_id"]
            try:
                stored = self.store.append_streams(
                    [
                        StreamAppend(link_stream(link.facts["link_id"]), version, used),
                        StreamAppend(session_stream(sid), session_version, changed),
                    ],
                    meta,
                    also=self.app.claims_for(changed),
                )
            except ConcurrencyError:
                continue  # the link or the session changed meanwhile: decide again
            return next(e for e in stored if e.type != "SessionLinkUsed")
        raise Conflict("the session was changed at the same time; try again")
