"""Command handlers: load the stream, ask the decider, append the events and the slot claims
they imply in one transaction. Streams: `therapist-<id>`, `session-<id>`, `course-<id>`
(a course or a booster plan; its sessions get their own streams in the same append)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from shared.application import CommandHandler
from shared.domain import Conflict, fold
from shared.events import Event, NewEvent, new_id, utcnow
from shared.eventstore import ConcurrencyError, EventStore, Metadata, StreamAppend
from shared.projections import ProjectionStore

from . import claims, diary
from .courses import BookCourse, Course, Plan, PlanBoosters
from .domain import Booking, BookSession, Session, SessionState, Therapist, TherapistState

ATTEMPTS = 5


def session_stream(session_id: str) -> str:
    return f"session-{session_id}"


def therapist_stream(therapist_id: str) -> str:
    return f"therapist-{therapist_id}"


class Scheduling:
    def __init__(
        self,
        store: EventStore,
        directory: ProjectionStore,
        *,
        clock: Callable[[], datetime] = utcnow,
        video_base: str | None = None,
    ):
        self.store, self.directory, self.clock, self.video_base = (
            store,
            directory,
            clock,
            video_base,
        )
        self.claims = store.db[claims.COLLECTION]
        self.therapists = CommandHandler(store, Therapist())
        self.session_decider = Session()

    # -- reading the write side -------------------------------------------------------------
    def therapist(self, therapist_id: str) -> TherapistState:
        return self.therapists.state(therapist_stream(therapist_id))[0]

    def session(self, session_id: str) -> tuple[SessionState, int]:
        events = self.store.load(session_stream(session_id))
        return fold(self.session_decider, events), len(events)

    def client_status(self, client_id: str) -> str | None:
        doc = self.directory.reader("clients").find_one({"_id": client_id}, {"status": 1})
        return doc["status"] if doc else None

    # -- therapists ----------------------------------------------------------------------------
    def therapist_command(self, therapist_id: str, command, meta: Metadata) -> list[Event]:
        return self.therapists.execute(therapist_stream(therapist_id), command, meta)

    # -- one session ---------------------------------------------------------------------------
    def book(self, booking: Booking, therapist_id: str, meta: Metadata) -> Event:
        if self.video_base and booking.video_link is None:
            booking = replace(booking, video_link=f"{self.video_base}/{booking.session_id}")

        def command(state: SessionState) -> BookSession:
            return BookSession(
                booking,
                self.therapist(therapist_id),
                self.client_status(booking.client_id),
                self.clock(),
            )

        # a session id the API has just made has no events yet: nothing to load
        fresh = (self.session_decider.initial_state(), 0)
        return self.session_command(booking.session_id, command, meta, loaded=fresh)[0]

    def session_command(
        self,
        session_id: str,
        make: Callable[[SessionState], object],
        meta: Metadata,
        *,
        loaded: tuple[SessionState, int] | None = None,
    ) -> list[Event]:
        """Decide on fresh state and append with the claims the events imply; a concurrent
        change of the same session makes us decide again on what it left. `loaded` is the
        (state, version) the caller has just read, used for the first attempt."""
        return self._decide_and_append(session_id, make, meta, loaded)[1]

    def change_session(
        self,
        session_id: str,
        make: Callable[[SessionState], object],
        meta: Metadata,
        loaded: tuple[SessionState, int],
    ) -> SessionState:
        """session_command, returning the state after it without reading the stream again."""
        state, stored = self._decide_and_append(session_id, make, meta, loaded)
        for event in stored:
            state = self.session_decider.evolve(state, event)
        return state

    def _decide_and_append(
        self, session_id, make, meta, loaded
    ) -> tuple[SessionState, list[Event]]:
        for _ in range(ATTEMPTS):
            state, version = loaded or self.session(session_id)
            loaded = None
            events = self.session_decider.decide(state, make(state))
            try:
                return state, self.store.append(
                    session_stream(session_id), version, events, meta, also=self._claims_for(events)
                )
            except ConcurrencyError:
                continue
        raise Conflict("the session was changed by someone else at the same time; try again")

    def _claims_for(self, events: Sequence[NewEvent]):
        """The claim writes the events imply: first the claims released (a cancelled or
        moved session), then every claim taken, in one insert for the whole command."""

        def write(session) -> None:
            taken = []
            for event in events:
                d = event.data
                if event.type in ("SessionRescheduled", "SessionCancelled"):
                    claims.release(self.claims, session, d["session_id"])
                if event.type in ("SessionBooked", "SessionRescheduled"):
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
        scopes = [f"therapist:{therapist_id}", f"client:{client_id}"] + (
            [f"room:{room}"] if room else []
        )
        # the whole local week around each wanted date is searched for alternatives
        busy = claims.busy(self.claims, scopes, start - timedelta(days=7), end + timedelta(days=7))
        return Plan(
            client_id=client_id,
            client_status=self.client_status(client_id),
            therapist=therapist,
            modality=modality,
            room=room,
            now=self.clock(),
            busy=busy,
            video_base=self.video_base,
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
                return self.store.append_streams(appends, meta, also=self._claims_for(events[1:]))
            except claims.SlotTaken:
                continue
        raise Conflict("the diary kept changing while booking; try again")

    # -- discharge ----------------------------------------------------------------------------
    def future_sessions(self, client_id: str) -> list[str]:
        return claims.future_sessions(self.claims, client_id, self.clock())
