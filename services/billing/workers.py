"""Billing's loop: the charge worker. A session the diary projection marks `pending` (it
was attended, missed or cancelled) gets its charge decided on the client's account. Doing
it twice adds nothing (one charge per session, its id derived from the session's); the flag
is cleared only if the session did not change meanwhile (`rev`)."""

from __future__ import annotations

import logging
import threading
import time

from pymongo import UpdateOne

from shared.consumer import projection_store
from shared.crypto import KeyDisposed, cipher_for
from shared.domain import DomainError
from shared.events import Actor, registry, utcnow
from shared.eventstore import ConcurrencyError, EventStore, Metadata
from shared.mongo import client as mongo_client
from shared.mongo import write_together
from shared.wakeup import IDLE_REST, work_loop

from .application import Application
from .domain import SessionOutcome
from .projections import Diary

log = logging.getLogger(__name__)
ACTOR = Actor.system("billing-charges")
ENDED = ("attended", "missed", "cancelled")
# seconds between two looks for sessions a changed price list may now charge. The worker wakes
# on every batch of the diary projection; looking each time (the price list's version, then
# the sessions left unpriced) was half of its store reads (issue 14, flows bench)
UNPRICED_EVERY = 5.0
LOOK = 50  # pending sessions charged per look, the oldest first


def outcome_of(doc: dict) -> SessionOutcome:
    return SessionOutcome(
        session_id=doc["_id"],
        client_id=doc["client_id"],
        therapist_id=doc["therapist_id"],
        kind=doc["kind"],
        modality=doc["modality"],
        starts_at=doc["starts_at"],
        outcome=doc["status"],
        cancelled_by=doc.get("cancelled_by"),
        cancelled_at=doc.get("cancelled_at"),
    )


class ChargeWorker:
    def __init__(self, settings, interval: float = 0.2, idle_rest: float = IDLE_REST):
        self.settings, self.interval, self.idle_rest = settings, interval, idle_rest
        self.store = EventStore(
            mongo_client(settings.mongo_uri_of("billing")),
            settings.database("billing"),
            registry,
            cipher=cipher_for(settings),
        )
        self.billing = Application(self.store, clock=utcnow)
        self.diary = projection_store(settings, Diary())
        self._unpriced_looked = float("-inf")  # monotonic time of the last look

    def run(self, stop: threading.Event) -> None:
        self.store.ensure_indexes()
        # one bad session must not stop everyone's charges. It rests on the diary's bell, which
        # rings after every batch the diary applied (a session marked pending is one), and
        # looks again at once only while a look comes back full (`step`)
        work_loop(
            self.store,
            self.step,
            stop,
            name="billing charges",
            interval=self.interval,
            idle_rest=self.idle_rest,
            again_when_busy=False,
            ring=Diary.rings[0],
        )

    def step(self) -> int:
        """Charge the pending sessions, oldest first, so a funder's sessions are the first
        ones the diary reports: LOOK at a time, looking again only while a look came back
        full (a look that found fewer found all there were; one marked pending since rings
        the diary's bell). Each step that charged something then looked once more for
        nothing before resting: half of its looks in the flows bench (issue 14)."""
        sessions = self.diary.reader("sessions")
        done = 0
        while True:
            pending = list(sessions.find({"pending": True}).sort("starts_at", 1).limit(LOOK))
            unpriced = self._charge_all(
                [
                    d
                    for d in pending
                    if d.get("status") in ENDED and d.get("modality") and d.get("kind")
                ]
            )
            if pending:
                # the flags of a look in one command: one by one, they were a fifth of the
                # worker's round trips (issue 14)
                write_together(
                    sessions,
                    [
                        UpdateOne(
                            {"_id": doc["_id"], "rev": doc["rev"]},
                            {"$set": {"pending": False, "unpriced": unpriced.get(doc["_id"])}},
                        )
                        for doc in pending
                    ],
                )
            done += len(pending)
            if len(pending) < LOOK:
                retried = self._retry_unpriced(sessions)  # marked pending again: charged now
                if not retried:
                    return done
                done += retried

    def _charge_all(self, ended: list[dict]) -> dict[str, dict]:
        """Charge the ended sessions of a look together (`Application.charge_sessions`);
        if an account moved meanwhile, or a client's key is gone (an account of a disposed
        client is not read), each on its own, as they always were. {session id: why it was
        not charged}, for those the price list has no fee for."""
        if not ended:
            return {}
        try:
            charged = self.billing.charge_sessions(
                [(outcome_of(doc), self._meta(doc)) for doc in ended]
            )
        except (ConcurrencyError, KeyDisposed):
            return {doc["_id"]: why for doc in ended if (why := self._charge(doc)) is not None}
        for session_id, err in charged.refused.items():
            log.error("charges: session %s not charged: %s", session_id, err.detail)
        return {
            session_id: {"reason": err.detail, "fees_version": charged.fees_version}
            for session_id, err in charged.refused.items()
        }

    def _retry_unpriced(self, sessions) -> int:
        """A session left uncharged for want of a price is tried again once the price list
        has changed since (a price it lacked may have been added): looked for at most every
        UNPRICED_EVERY seconds (the loop rests at most IDLE_REST between two steps)."""
        now = time.monotonic()
        if now - self._unpriced_looked < UNPRICED_EVERY:
            return 0
        self._unpriced_looked = now
        version = self.store.stream_version("fees")
        stale = list(sessions.find({"unpriced.fees_version": {"$lt": version}}).limit(50))
        for doc in stale:
            sessions.update_one({"_id": doc["_id"], "rev": doc["rev"]}, {"$set": {"pending": True}})
        return len(stale)

    @staticmethod
    def _meta(doc: dict) -> Metadata:
        return Metadata(
            ACTOR, correlation_id=f"session:{doc['_id']}", causation_id=doc.get("last_event_id")
        )

    def _charge(self, doc: dict) -> dict | None:
        """Charge the session; why not, when the price list has no fee for it (shown to
        reception with the client's charges, and tried again when the list changes)."""
        version = self.store.stream_version("fees")  # before: a change meanwhile retries it
        try:
            self.billing.charge_session(outcome_of(doc), self._meta(doc))
        except DomainError as err:
            log.error("charges: session %s not charged: %s", doc["_id"], err.detail)
            return {"reason": err.detail, "fees_version": version}
        except KeyDisposed:
            log.info("charges: session %s skipped, its client has been disposed of", doc["_id"])
        return None


def workers(settings) -> list:
    return [ChargeWorker(settings).run]
