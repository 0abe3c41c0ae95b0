"""Booking links (domain/booking_link.py): issuing one, minting its tokens for the messages
that carry it, opening it from a token, and booking through it. Booking appends the link's
`BookingLinkUsed` and the session's `SessionBooked` in one transaction with the session's
slot claims (claims.py), exactly as a staff booking takes them: two people racing for one
time, or a person racing reception, cannot both get it; and the link's stream version makes
it book once. Only hashes of the tokens are stored (architecture.md: secrets are not events)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from pymongo import IndexModel

from shared.application import CommandHandler, Outcome
from shared.domain import Conflict, Invalid, NotFound
from shared.events import Event, new_id
from shared.eventstore import ConcurrencyError, Metadata, StreamAppend

from ..domain import diary
from ..domain.booking_link import (
    BookingLinkState,
    IssueBookingLink,
    UseBookingLink,
    booking_link,
)
from ..domain.session import Booking, BookSession
from . import Application, claims, session_stream

TOKENS = "booking_link_tokens"
ATTEMPTS = 5
# What the link vouches for when the directory does not know the person yet: reception
# issued it for the client id records reserved at their enquiry.
ENQUIRER = "enquirer"


def link_stream(link_id: str) -> str:
    return f"booking-link-{link_id}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenLinks:
    """Links a person opens by a token: the link's stream (decided by `decider`) and its
    tokens, kept only as hashes in `collection` and gone when they expire. Booking links
    and a client's own session links (session_links.py) are both."""

    def __init__(self, app: Application, decider, collection: str):
        self.app, self.store = app, app.store
        self.links = CommandHandler(app.store, decider)
        self.tokens = app.store.db[collection]

    def ensure_indexes(self) -> None:
        self.tokens.create_indexes(
            [IndexModel("link_id"), IndexModel("expires_at", expireAfterSeconds=0)]
        )


class BookingLinks(TokenLinks):
    def __init__(self, app: Application):
        super().__init__(app, booking_link, TOKENS)

    def state(self, link_id: str) -> BookingLinkState:
        state, _ = self.links.state(link_stream(link_id))
        if state.status is None:
            raise NotFound(f"no booking link {link_id}")
        return state

    def issue(self, command: IssueBookingLink, meta: Metadata) -> Outcome:
        """Offer the times (422 naming any time already taken: a link offers free ones)."""
        offered = sorted(set(command.starts))
        wanted = BookingLinkState(
            "offered",
            {
                "therapist_id": command.therapist.therapist_id,
                "client_id": command.client_id,
                "room": command.room,
                "starts": offered,
            },
        )
        free = set(self.free_times(wanted))
        for n, start in enumerate(command.starts):
            if start in offered and start > command.now and start not in free:
                raise Invalid(f"{start.isoformat()} is taken already", field=f"starts.{n}")
        return self.links.run(link_stream(command.link_id), command, meta)

    def mint(self, link_id: str) -> tuple[str, datetime]:
        """A fresh token for one message carrying the link; earlier ones keep working until
        the link is used or expires. 404 for a link that cannot be used any more."""
        state = self.state(link_id)
        if not state.usable(self.app.clock()):
            raise NotFound("this booking link has been used or has expired")
        token = secrets.token_urlsafe(32)
        expires_at = state.facts["expires_at"]
        self.tokens.insert_one(
            {"_id": token_hash(token), "link_id": link_id, "expires_at": expires_at}
        )
        return token, expires_at

    def open(self, token: str) -> BookingLinkState:
        """The link a token opens, if it can still be used; anything else (unknown, used,
        expired) is the same 404, so a guessed token cannot be told from a spent one."""
        gone = NotFound("this link is not valid any more")
        if not token or len(token) > 100:
            raise gone
        found = self.tokens.find_one({"_id": token_hash(token)}, {"link_id": 1})
        if found is None:
            raise gone
        state, _ = self.links.state(link_stream(found["link_id"]))
        if not state.usable(self.app.clock()):
            raise gone
        return state

    def free_times(self, state: BookingLinkState) -> list[datetime]:
        """The offered times still free for the therapist, the person and the room."""
        f = state.facts
        scopes = [f"therapist:{f['therapist_id']}", f"client:{f['client_id']}"]
        scopes += [f"room:{f['room']}"] if f.get("room") else []
        starts = f["starts"]
        busy = claims.busy(self.app.claims, scopes, starts[0], starts[-1])
        return [
            s
            for s in starts
            if s > self.app.clock()
            and not busy.intersection(
                diary.claim_keys(
                    s, therapist_id=f["therapist_id"], client_id=f["client_id"], room=f.get("room")
                )
            )
        ]

    def book(self, token: str, starts_at: datetime, meta: Metadata) -> Event:
        """Book the chosen time: the link spent and the session booked, atomically, with the
        session's claims (409 `slot_taken` if the time went meanwhile: choose another)."""
        session_id = new_id()
        for _ in range(ATTEMPTS):
            link = self.open(token)
            stream = link_stream(link.facts["link_id"])
            state, version = self.links.state(stream)
            now = self.app.clock()
            used = booking_link.decide(state, UseBookingLink(session_id, starts_at, now))
            booked = self._decide_booking(state, session_id, starts_at, now)
            try:
                stored = self.store.append_streams(
                    [
                        StreamAppend(stream, version, used),
                        StreamAppend(session_stream(session_id), 0, booked),
                    ],
                    meta,
                    also=self.app.claims_for(booked),
                )
            except ConcurrencyError:
                continue  # the link changed (used by another tab): decide again
            return next(e for e in stored if e.type == "SessionBooked")
        raise Conflict("the link was changed at the same time; try again")

    def _decide_booking(self, link: BookingLinkState, session_id: str, starts_at, now):
        f = link.facts
        booking = Booking(
            session_id=session_id,
            client_id=f["client_id"],
            kind=f["kind"],
            modality=f["modality"],
            starts_at=starts_at,
            room=f.get("room"),
        )
        # a video session gets its room as a staff booking does (domain/rooms.py); someone
        # not yet registered has no directory entry and is named "Client" in the room
        status, rooms = self.app.client_facts(f["client_id"])
        status = status or ENQUIRER
        therapist = self.app.therapist(f["therapist_id"])
        fresh = self.app.session_decider.initial_state()  # a new session: nothing to load
        command = BookSession(booking, therapist, status, now, rooms=rooms)
        return self.app.session_decider.decide(fresh, command)
