"""The scheduling application: one method per command. Each loads its stream once, checks
on that state who may act (a therapist only in their own diary), decides, and appends the
events with the slot claims they imply in one transaction (`claims`: the store's unique
keys make a double booking impossible), deciding again on a concurrent change. Streams:
`therapist-<id>`, `session-<id>`, `course-<id>` (a course or a booster plan; its sessions
get their own streams in the same append)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from flask import current_app

from shared.application import CommandHandler, Outcome
from shared.auth import Forbidden, Identity
from shared.directory import check_client_access
from shared.domain import Conflict, NotFound, fold
from shared.events import Event, NewEvent, new_id, utcnow
from shared.eventstore import EventStore, Metadata, StreamAppend
from shared.projections import ProjectionStore
from shared.web import context

from ..domain import diary, rooms
from ..domain.courses import BookCourse, Course, Plan, PlanBoosters
from ..domain.rooms import RoomProvider, VideoRooms
from ..domain.session import (
    AttendSession,
    Booking,
    BookSession,
    CancelSession,
    MissSession,
    RescheduleSession,
    Session,
    SessionState,
)
from ..domain.therapist import RegisterTherapist, SetAvailability, Therapist, TherapistState
from ..projections import directory
from . import claims

ATTEMPTS = 5
# the events that free a session's claims, and those that take claims for it
RELEASING = ("SessionRescheduled", "SessionCancelled")
CLAIMING = ("SessionBooked", "SessionRescheduled")


def session_stream(session_id: str) -> str:
    return f"session-{session_id}"


def therapist_stream(therapist_id: str) -> str:
    return f"therapist-{therapist_id}"


def own_diary(who: Identity, therapist_id: str) -> None:
    """A therapist sees and changes only their own diary (admin and lead: everyone's)."""
    if who.role == "therapist" and who.therapist_id != therapist_id:
        raise Forbidden("you can see and change only your own diary")


class Application:
    def __init__(
        self,
        store: EventStore,
        directory: ProjectionStore,
        *,
        clock: Callable[[], datetime] = utcnow,
        rooms: RoomProvider | None = None,
    ):
        self.store, self.directory, self.clock = store, directory, clock
        self.rooms = rooms
        self._therapist_names: dict[str, str] = {}
        self.claims = store.db[claims.COLLECTION]
        self.therapists = CommandHandler(store, Therapist())
        self.session_decider = Session()
        self.sessions = CommandHandler(store, self.session_decider)

    # -- reading the write side -------------------------------------------------------------
    def therapist(self, therapist_id: str) -> TherapistState:
        return self.therapists.state(therapist_stream(therapist_id))[0]

    def session(self, session_id: str) -> tuple[SessionState, int]:
        events = self.store.load(session_stream(session_id))
        return fold(self.session_decider, events), len(events)

    def client(self, client_id: str, who: Identity) -> dict | None:
        """The client as the directory knows them, if `who` may see their diary data (not
        clinical content: admin may; a therapist only for their own client)."""
        found = self.directory.reader("clients").find_one({"_id": client_id})
        check_client_access(who, found)
        return found

    def client_facts(self, client_id: str) -> tuple[str | None, VideoRooms | None]:
        """What a command needs of the client, from one read of the directory: their status
        (None: the directory does not know them) and how their video rooms are made. Each
        was a read of the same document (issue 14)."""
        return self._facts(
            self.directory.reader("clients").find_one(
                {"_id": client_id}, {"status": 1, "given_name": 1}
            )
        )

    def _facts(self, client: dict | None) -> tuple[str | None, VideoRooms | None]:
        """(status, video rooms) of a client document the directory gave (or None)."""
        return (client["status"] if client else None), self._rooms(client)

    def _rooms(self, client: dict | None) -> VideoRooms | None:
        """How this client's video rooms are made: the Jitsi display name is their given name
        only (the therapist knows who they are; anyone else in view of a screen need not).
        Someone the directory does not know yet (a booking link from an enquiry) is "Client"."""
        if self.rooms is None:
            return None
        return VideoRooms(self.rooms, (client or {}).get("given_name") or "Client")

    def therapist_link(self, state: SessionState, who: Identity) -> str | None:
        """The session's therapist's own (moderator) link; nobody else is given one."""
        therapist_id = state.facts.get("therapist_id")
        if self.rooms is None or state.status != "booked" or who.therapist_id != therapist_id:
            return None
        if therapist_id not in self._therapist_names:  # a course: one load, not sixteen
            self._therapist_names[therapist_id] = self.therapist(therapist_id).name
        name = self._therapist_names[therapist_id] or "Therapist"
        return rooms.therapist_link(self.rooms, state.facts, therapist_id, name)

    # -- therapists ----------------------------------------------------------------------------
    def register_therapist(self, command: RegisterTherapist, meta: Metadata) -> TherapistState:
        stream = therapist_stream(command.therapist_id)
        return self.therapists.run(stream, command, meta).state

    def set_availability(
        self, therapist_id: str, command: SetAvailability, who: Identity, meta: Metadata
    ) -> TherapistState:
        own_diary(who, therapist_id)
        return self.therapists.run(therapist_stream(therapist_id), command, meta).state

    # -- one session ---------------------------------------------------------------------------
    def book(self, booking: Booking, therapist_id: str, who: Identity, meta: Metadata) -> Event:
        own_diary(who, therapist_id)
        # the access check's read gives the client's status and room name too
        status, rooms = self._facts(self.client(booking.client_id, who))

        def command(state: SessionState) -> BookSession:
            return BookSession(
                booking, self.therapist(therapist_id), status, self.clock(), rooms=rooms
            )

        # a session id the API has just made has no events yet: nothing to load
        fresh = (self.session_decider.initial_state(), 0)
        return self.run_session(booking.session_id, command, meta, loaded=fresh).events[0]

    def visible_session(self, session_id: str, who: Identity) -> SessionState:
        """The session as stored now, if `who` may see it."""
        state, _ = self.session(session_id)
        self._in_callers_diary(session_id, who)(state)
        return state

    def reschedule(self, session_id: str, who: Identity, meta: Metadata, **wanted) -> Outcome:
        """Move a booked session (its claims move with it, atomically)."""

        def command(current: SessionState) -> RescheduleSession:
            status, rooms = self.client_facts(current.facts["client_id"])
            return RescheduleSession(
                therapist=self.therapist(current.facts["therapist_id"]),
                now=self.clock(),
                client_status=status,
                rooms=rooms,
                **wanted,
            )

        return self._change(session_id, who, meta, command)

    def cancel(
        self, session_id: str, by: str, reason: str, who: Identity, meta: Metadata
    ) -> Outcome:
        return self._change(
            session_id, who, meta, lambda _s: CancelSession(by, reason, self.clock())
        )

    def attend(self, session_id: str, who: Identity, meta: Metadata) -> Outcome:
        return self._change(session_id, who, meta, lambda _s: AttendSession(self.clock()))

    def miss(self, session_id: str, who: Identity, meta: Metadata) -> Outcome:
        return self._change(session_id, who, meta, lambda _s: MissSession(self.clock()))

    def _change(self, session_id: str, who: Identity, meta: Metadata, make) -> Outcome:
        return self.run_session(
            session_id, make, meta, check=self._in_callers_diary(session_id, who)
        )

    @staticmethod
    def _in_callers_diary(session_id: str, who: Identity) -> Callable[[SessionState], None]:
        """The access rule on a session: it exists (404) and is in a diary `who` may see
        and change (`own_diary`, 403)."""

        def check(state: SessionState) -> None:
            if state.status is None:
                raise NotFound(f"no session {session_id}")
            own_diary(who, state.facts["therapist_id"])

        return check

    def run_session(
        self,
        session_id: str,
        make: Callable[[SessionState], object],
        meta: Metadata,
        *,
        check: Callable[[SessionState], None] | None = None,
        loaded: tuple[SessionState, int] | None = None,
    ) -> Outcome:
        """CommandHandler.run for a session, with the claims its events imply appended in
        the same transaction: load the stream once per attempt (`loaded`, when the caller
        has just read it, serves the first), `check(state)`, decide on `make(state)` (a
        command carries facts read for this state: the therapist, the client's status, the
        clock), append; a concurrent change of the session makes it decide again."""
        stream = session_stream(session_id)
        for _ in range(ATTEMPTS):
            state, version = loaded or self.session(session_id)
            loaded = None
            if check is not None:
                check(state)
            events = self.session_decider.decide(state, make(state))
            also = self.claims_for(events)
            outcome = self.sessions.commit(stream, state, version, events, meta, also=also)
            if outcome is not None:
                return outcome
        raise Conflict("the session was changed by someone else at the same time; try again")

    def claims_for(self, events: Sequence[NewEvent]):
        """The claim writes the events imply: first the claims released (a cancelled or
        moved session), then every claim taken, in one insert for the whole command."""

        def write(session) -> None:
            taken = []
            for event in events:
                d = event.data
                if event.type in RELEASING:
                    claims.release(self.claims, session, d["session_id"])
                if event.type in CLAIMING:
                    keys = diary.claim_keys(
                        d["starts_at"],
                        therapist_id=d["therapist_id"],
                        client_id=d["client_id"],
                        room=d.get("room"),
                    )
                    taken += [(k, d["session_id"]) for k in keys]
            claims.take(self.claims, session, taken)

        return write

    # -- courses and boosters -----------------------------------------------------------------
    def plan(
        self,
        *,
        client_id: str,
        therapist_id: str,
        modality: str,
        room: str | None,
        start: datetime,
        end: datetime,
    ) -> Plan:
        therapist = self.therapist(therapist_id)
        status, rooms = self.client_facts(client_id)
        scopes = [f"therapist:{therapist_id}", f"client:{client_id}"] + (
            [f"room:{room}"] if room else []
        )
        # the whole local week around each wanted date is searched for alternatives
        busy = claims.busy(self.claims, scopes, start - timedelta(days=7), end + timedelta(days=7))
        return Plan(
            client_id=client_id,
            client_status=status,
            therapist=therapist,
            modality=modality,
            room=room,
            now=self.clock(),
            busy=busy,
            rooms=rooms,
        )

    def book_many(
        self, make: Callable[[str], BookCourse | PlanBoosters], meta: Metadata
    ) -> list[Event]:
        """Book a course or a booster plan: the plan stream and every session stream in one
        transaction. If another booking takes one of its slots meanwhile, plan again."""
        plan_id = new_id()
        for _ in range(ATTEMPTS):
            command = make(plan_id)
            events = Course().decide(False, command)
            appends = [StreamAppend(f"course-{plan_id}", 0, events[:1])]
            appends += [
                StreamAppend(session_stream(e.data["session_id"]), 0, [e]) for e in events[1:]
            ]
            try:
                return self.store.append_streams(appends, meta, also=self.claims_for(events[1:]))
            except claims.SlotTaken:
                continue
        raise Conflict("the diary kept changing while booking; try again")

    # -- discharge ----------------------------------------------------------------------------
    def future_sessions(self, client_id: str) -> list[str]:
        return claims.future_sessions(self.claims, client_id, self.clock())


def application() -> Application:
    """The Application for this request (stateless beyond the store: made per request)."""
    ctx = context()
    return Application(
        ctx.store,
        ctx.projection(directory()),
        clock=current_app.config["SCHEDULING_CLOCK"],
        rooms=current_app.config["SCHEDULING_ROOMS"],
    )
