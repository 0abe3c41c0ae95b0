"""The records application: one method per command. Each loads the client's stream once
(`CommandHandler.run`), judges on that state who may reach the record, decides, appends
with the expected version (deciding again on a concurrent write) and returns the record
with the new events applied, so a route never reads the stream a second time.

Reads of the record come from the stream too (synchronously, so a command's effect is
visible at once and `as_of` is exact); the projections add what other services told us
(sessions booked and attended)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from flask import current_app
from pymongo import ASCENDING, IndexModel

from shared.application import CommandHandler, Outcome
from shared.auth import Forbidden, Identity
from shared.crypto import KeyStore
from shared.directory import check_client_access
from shared.domain import Conflict, Invalid, NotFound, fold
from shared.eventstore import ConcurrencyError, EventStore, Metadata, StreamAppend
from shared.projections import ProjectionStore
from shared.web import context

from .domain import ClientState
from .domain import commands as c
from .domain import enquiry as enq
from .domain import record as decider
from .domain.course import CompleteCourse
from .domain.rules import suggested_phase
from .projections import ClientSummaries

CLINICAL_ROLES = ("therapist", "clinical_lead")
COURSE_KINDS = ("assessment", "treatment")
# How long a write naming a session records has not heard of yet waits for scheduling's
# SessionBooked to reach the projection: a note written just after booking must not be
# refused because the consumer is a few milliseconds behind (issue 15, #10).
SESSION_WAIT_SECONDS = 3.0


def sees_clinical(identity: Identity) -> bool:
    return identity.role in CLINICAL_ROLES


def own_caseload_only(identity: Identity, therapist_id: str | None) -> None:
    if identity.role == "therapist" and therapist_id != identity.therapist_id:
        raise Forbidden("a therapist reaches only their own caseload")


def access(identity: Identity, client_id: str, *, clinical: bool) -> Callable[[ClientState], None]:
    """The access rule on a record: 404 if there is no such client, 403 if it is not on a
    therapist's caseload or is clinical and the caller is reception
    (shared.directory.check_client_access). Judged on today's record: who may read a
    record is decided by today's therapist, not the one of the past."""

    def check(state: ClientState) -> None:
        if not state.registered:
            raise NotFound(f"no client {client_id}")
        check_client_access(
            identity, {"therapist_id": state.details["therapist_id"]}, clinical=clinical
        )

    return check


class Application:
    def __init__(self, store: EventStore, summaries: ProjectionStore):
        self.store, self.summaries = store, summaries
        self.handler = CommandHandler(store, decider)
        self.enquiries = CommandHandler(store, enq.enquiry)

    @staticmethod
    def ensure_indexes(store: EventStore) -> None:
        # `POST /tasks/{id}/...` names only the task: find its client's stream by index
        store.events.create_indexes(
            [IndexModel([("data.task_id", ASCENDING), ("type", ASCENDING)], name="task_lookup")]
        )

    # -- commands ----------------------------------------------------------------------------
    def register(self, command: c.RegisterClient, who: Identity, meta: Metadata) -> ClientState:
        own_caseload_only(who, command.therapist_id)
        return self.handler.run(command.client_id, command, meta).state

    def correct_details(
        self, command: c.CorrectDetails, who: Identity, meta: Metadata
    ) -> ClientState:
        """Reassigning the therapist is a correction, for reception or the clinical lead."""
        may_reach = access(who, command.client_id, clinical=False)

        def check(state: ClientState) -> None:
            may_reach(state)
            if "therapist_id" in command.changes and who.role == "therapist":
                raise Forbidden("reception or the clinical lead reassign clients")

        return self.handler.run(command.client_id, command, meta, check=check).state

    def assess(self, command: c.RecordAssessment, who: Identity, meta: Metadata) -> ClientState:
        return self._clinical(command, who, meta, session_id=command.session_id).state

    def formulate(self, command: c.RecordFormulation, who: Identity, meta: Metadata) -> ClientState:
        return self._clinical(command, who, meta).state

    def change_phase(self, command: c.ChangePhase, who: Identity, meta: Metadata) -> Outcome:
        return self._clinical(command, who, meta)

    def record_note(self, command: c.RecordNote, who: Identity, meta: Metadata) -> ClientState:
        """A new note names its session; an amendment keeps the session of the original."""
        return self._clinical(command, who, meta, session_id=command.session_id).state

    def assign_task(self, command: c.AssignTask, who: Identity, meta: Metadata) -> ClientState:
        return self._clinical(command, who, meta, session_id=command.session_id).state

    def complete_task(self, command: c.CompleteTask, who: Identity, meta: Metadata) -> ClientState:
        return self._clinical(command, who, meta).state

    def review_task(self, command: c.ReviewTask, who: Identity, meta: Metadata) -> ClientState:
        return self._clinical(command, who, meta, session_id=command.session_id).state

    def discharge(self, command: c.DischargeClient, who: Identity, meta: Metadata) -> ClientState:
        """Boosters are the client's choice: a discharge while some are booked is refused
        (409 naming `cancel_boosters`) until staff say explicitly that they go too; the
        client is then told their care has ended (notifications), never silently."""
        may_reach = access(who, command.client_id, clinical=True)

        def check(state: ClientState) -> None:
            may_reach(state)
            if state.status == "active" and command.cancel_boosters is not True:
                self._no_boosters_ahead(command.client_id, command.discharged_at)

        return self.handler.run(command.client_id, command, meta, check=check).state

    def _no_boosters_ahead(self, client_id: str, now: datetime) -> None:
        ahead = list(
            self.summaries.reader("sessions")
            .find(
                {
                    "client_id": client_id,
                    "status": "booked",
                    "starts_at": {"$gt": now},
                    "kind": "booster",
                },
                {"starts_at": 1},
            )
            .sort("starts_at", ASCENDING)
        )
        if ahead:
            dates = ", ".join(f"{d['starts_at']:%d %b %Y}" for d in ahead)
            raise Conflict(
                f"the client has {len(ahead)} booster session(s) booked ({dates}); "
                "discharge cancels them only if you say so (cancel_boosters: true), or "
                "keep the client in maintenance until they have had them",
                field="cancel_boosters",
                code="boosters_booked",
            )

    def link_holder(self, client_id: str, who: Identity) -> ClientState:
        """Who may issue a client's homework link: their therapist, the lead, a service;
        only while the client is in care."""
        state, _ = self.states(client_id)
        if who.role != "service":
            access(who, client_id, clinical=True)(state)
        if state.status != "active":
            raise Conflict(f"the client was {state.status}", code=state.status)
        return state

    def by_client(self, command, meta: Metadata) -> ClientState:
        """A command the client makes at their homework link: the link (checked by the
        caller) is the access rule; the record decides the rest."""
        return self.handler.run(command.client_id, command, meta).state

    def complete_course(self, command: CompleteCourse, who: Identity, meta: Metadata) -> Outcome:
        return self._clinical(command, who, meta)

    def complete_at_final_session(
        self, client_id: str, session_id: str, attended_at: datetime, meta: Metadata
    ) -> Outcome:
        """Session 16 was attended: the course is completed, its outcome left to the
        therapist (records' worker; no caller to check)."""
        command = CompleteCourse(
            client_id,
            ended="final_session",
            completed_at=attended_at,
            by=meta.actor.id,
            sessions_attended=self.course_sessions_attended(client_id),
            session_id=session_id,
        )
        return self.handler.run(client_id, command, meta)

    def attendance_known(self, session_id: str) -> bool:
        """Whether the summaries have counted this attended session yet: they read
        scheduling's topic apart from the course-end queue, so may lag behind it."""
        return self.summaries.reader("attendance").find_one({"_id": session_id}) is not None

    def course_sessions_attended(self, client_id: str) -> int:
        return self.summaries.reader("attendance").count_documents(
            {"client_id": client_id, "kind": {"$in": list(COURSE_KINDS)}}
        )

    def request_erasure(self, command: c.RequestErasure, who: Identity, meta: Metadata) -> Outcome:
        return self._clinical(command, who, meta)

    def dispose(self, command: c.DisposeClient, who: Identity, meta: Metadata) -> Outcome:
        return self._clinical(command, who, meta)

    def _clinical(
        self, command, who: Identity, meta: Metadata, *, session_id: str | None = None
    ) -> Outcome:
        """A clinical command: only the client's therapist or the clinical lead. One that
        names a session: access first (403 before anything is said about sessions), then
        the session must be the client's (422 naming `session_id`). A closed record skips
        that check so the command's own 409 (discharged, disposed) answers."""
        may_reach = access(who, command.client_id, clinical=True)

        def check(state: ClientState) -> None:
            may_reach(state)
            if session_id and state.status == "active":
                self.check_session(command.client_id, session_id)

        return self.handler.run(command.client_id, command, meta, check=check)

    # -- enquiries (reception; their own streams, domain/enquiry.py) --------------------------
    def enquiry_step(self, enquiry_id: str, command, meta: Metadata) -> Outcome:
        return self.enquiries.run(enquiry_stream(enquiry_id), command, meta)

    def dispose_enquiry(
        self, enquiry_id: str, now: datetime, meta: Metadata, keys: KeyStore
    ) -> Outcome:
        """`EnquiryDisposed` (the domain refuses it inside retention or once registered),
        then the key reserved for the person is destroyed: crypto-shredding, as for a client.
        The key goes after the event is stored; asking again repeats it harmlessly."""
        outcome = self.enquiry_step(enquiry_id, enq.DisposeEnquiry(now), meta)
        keys.destroy(outcome.state.client_id)
        return outcome

    def enquiry(self, enquiry_id: str) -> enq.EnquiryState:
        state, _ = self.enquiries.state(enquiry_stream(enquiry_id))
        if state.status is None:
            raise NotFound(f"no enquiry {enquiry_id}")
        return state

    def register_from_enquiry(
        self, enquiry_id: str, extra: dict, who: Identity, meta: Metadata, now: datetime
    ) -> ClientState:
        """`EnquiryConverted` and the client's `ClientRegistered` (details carried over from
        the enquiry) in one append: both or neither."""
        own_caseload_only(who, extra.get("therapist_id"))
        stream = enquiry_stream(enquiry_id)
        for _ in range(5):
            state, version = self.enquiries.state(stream)
            converted = enq.enquiry.decide(state, enq.ConvertEnquiry(who.sub, now))
            register = c.RegisterClient(**enq.registration(state, extra))
            client, client_version = self.handler.state(state.client_id)
            registered = decider.decide(client, register)
            try:
                stored = self.store.append_streams(
                    [
                        StreamAppend(stream, version, converted),
                        StreamAppend(state.client_id, client_version, registered),
                    ],
                    meta,
                )
            except ConcurrencyError:
                continue
            return fold(decider, [e for e in stored if e.stream_id == state.client_id])
        raise Conflict("the enquiry was changed by someone else at the same time; try again")

    # -- the record ------------------------------------------------------------------------
    def record(
        self, client_id: str, who: Identity, *, clinical: bool, until: datetime | None = None
    ) -> ClientState:
        """The record (as of `until`) if the caller may reach it (`access`, judged on the
        record now)."""
        now, then = self.states(client_id, until)
        access(who, client_id, clinical=clinical)(now)
        return then

    def states(
        self, client_id: str, until: datetime | None = None
    ) -> tuple[ClientState, ClientState]:
        """(the record now, the record as known at `until`), from one read of the stream."""
        events = self.store.load(client_id)
        now = fold(decider, events)
        if not now.registered:
            raise NotFound(f"no client {client_id}")
        if until is None:
            return now, now
        then = fold(decider, (e for e in events if e.recorded_at <= until))
        if not then.registered:
            raise NotFound(f"client {client_id} was not yet registered at {until.isoformat()}")
        return now, then

    def client_of_task(self, task_id: str) -> str:
        doc = self.store.events.find_one(
            {"data.task_id": task_id, "type": "TaskAssigned"}, {"data.client_id": 1}
        )
        if doc is None:
            raise NotFound(f"no task {task_id}")
        return doc["data"]["client_id"]

    # -- what scheduling told us -------------------------------------------------------------
    def attendance(self, client_id: str, until: datetime | None = None) -> dict:
        """Sessions attended as scheduling reported them (known by `until`), and the phase
        that count suggests."""
        query: dict = {"client_id": client_id}
        if until is not None:
            query["recorded_at"] = {"$lte": until}
        docs = list(self.summaries.reader("attendance").find(query, {"kind": 1}))
        course = sum(1 for d in docs if d["kind"] in COURSE_KINDS)
        boosters = sum(1 for d in docs if d["kind"] == "booster")
        return {
            "attended_sessions": course + boosters,
            "suggested_phase": suggested_phase(course, boosters),
        }

    def sessions(self, client_id: str) -> list[dict]:
        return list(
            self.summaries.reader("sessions")
            .find({"client_id": client_id})
            .sort("starts_at", ASCENDING)
        )

    def check_session(
        self, client_id: str, session_id: str, wait: float = SESSION_WAIT_SECONDS
    ) -> None:
        """The session must be one of this client's, as scheduling reported it (issue 15,
        #10: records took any session id, another client's included). A session not known
        yet is waited for, bounded; one of another client is refused at once. Both answers
        read alike, so a refusal does not tell whether another client's session exists."""
        sessions = self.summaries.reader("sessions")
        deadline = time.monotonic() + wait
        while True:
            found = sessions.find_one({"_id": session_id}, {"client_id": 1})
            if found is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if found is None or found.get("client_id") != client_id:
            raise Invalid(
                f"no session {session_id} of this client is known: name a session booked for "
                "this client in scheduling (one booked in the last few seconds may not have "
                "reached records yet: send again in a moment)",
                field="session_id",
            )


def enquiry_stream(enquiry_id: str) -> str:
    return f"enquiry-{enquiry_id}"


def application() -> Application:
    """The app's Application, shared by its routes; made on first use (in a request, so
    never before gunicorn forks)."""
    found = current_app.extensions.get("records")
    if found is None:
        ctx = context()
        Application.ensure_indexes(ctx.store)
        found = current_app.extensions["records"] = Application(
            ctx.store, ctx.projection(ClientSummaries())
        )
    return found
