"""Command handling and record reads: the client's stream is the source of truth (read
synchronously, so a command's effect is visible at once and `as_of` is exact); the
projections add what other services told us (sessions attended, sessions booked)."""

from __future__ import annotations

import time
from datetime import datetime

from pymongo import ASCENDING, IndexModel

from shared.application import CommandHandler
from shared.domain import Invalid, NotFound, fold
from shared.events import Event
from shared.eventstore import EventStore, Metadata
from shared.projections import ProjectionStore

from .domain import ClientState, record
from .rules import suggested_phase

COURSE_KINDS = ("assessment", "treatment")
# How long a write naming a session records has not heard of yet waits for scheduling's
# SessionBooked to reach the projection: a note written just after booking must not be
# refused because the consumer is a few milliseconds behind (issue 15, #10).
SESSION_WAIT_SECONDS = 3.0


class Records:
    def __init__(self, store: EventStore, summaries: ProjectionStore):
        self.store, self.summaries = store, summaries
        self.handler = CommandHandler(store, record)

    @staticmethod
    def ensure_indexes(store: EventStore) -> None:
        # `POST /tasks/{id}/...` names only the task: find its client's stream by index
        store.events.create_indexes(
            [IndexModel([("data.task_id", ASCENDING), ("type", ASCENDING)], name="task_lookup")]
        )

    def execute(self, client_id: str, command, meta: Metadata) -> ClientState:
        self.handler.execute(client_id, command, meta)
        return self.state(client_id)

    def state(self, client_id: str) -> ClientState:
        return self.states(client_id)[0]

    def states(
        self, client_id: str, until: datetime | None = None
    ) -> tuple[ClientState, ClientState]:
        """(the record now, the record as known at `until`). Access is judged on the first:
        who may read a record is decided by today's therapist, not the one of the past."""
        events = self.store.load(client_id)
        now = fold(record, events)
        if not now.registered:
            raise NotFound(f"no client {client_id}")
        if until is None:
            return now, now
        then = fold(record, (e for e in events if e.recorded_at <= until))
        if not then.registered:
            raise NotFound(f"client {client_id} was not yet registered at {until.isoformat()}")
        return now, then

    def events(self, client_id: str, until: datetime | None = None) -> list[Event]:
        events = self.store.load(client_id, until=until)
        if not events:
            raise NotFound(f"no client {client_id}")
        return events

    def client_of_task(self, task_id: str) -> str:
        doc = self.store.events.find_one(
            {"data.task_id": task_id, "type": "TaskAssigned"}, {"data.client_id": 1}
        )
        if doc is None:
            raise NotFound(f"no task {task_id}")
        return doc["data"]["client_id"]

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
